using YarpGateway.Tests.Deploy;

namespace YarpGateway.Tests.Configuration;

/// <summary><c>tests/aot/keys.txt</c>, the keys CI's native AOT check gives bad values to, keeps up with the settings.</summary>
public class AotCheckKeysTests
{
    [Fact]
    public void EveryGatewaySetting_IsInTheAotChecksKeys()
    {
        var keys = File.ReadLines(RepositoryFiles.PathOf("tests/aot/keys.txt"))
            .Where(line => line.Length > 0 && !line.StartsWith('#'))
            .ToHashSet(StringComparer.OrdinalIgnoreCase);

        var missing = GatewaySettingsSchema.Leaves().Select(leaf => leaf.Key).Where(key => !keys.Contains(key)).ToList();

        Assert.True(missing.Count == 0, "not in tests/aot/keys.txt: " + string.Join(", ", missing));
    }
}
