using System.Reflection;
using YarpGateway.Configuration;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Configuration;

/// <summary>
/// A value that does not convert, in any <c>Gateway:*</c> section, is a listed configuration error, never an exception
/// out of start-up: <c>Gateway:RequestFiltering:UnderscoresInHeaders=maybe</c> ended the process with a stack trace,
/// because a service read its options while YARP built its transforms, before the errors were listed.
/// </summary>
public class UnconvertibleSettingsTests
{
    /// <summary>Every section's first setting of a simple type that a word cannot be: a flag, a number or a time.</summary>
    public static TheoryData<string> Settings()
    {
        var data = new TheoryData<string>();
        foreach (var (section, type) in GatewayServiceCollectionExtensions.SettingsSchema.GatewaySections)
        {
            var property = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
                .FirstOrDefault(p => p.CanWrite && (Nullable.GetUnderlyingType(p.PropertyType) ?? p.PropertyType) is var t
                    && (t == typeof(bool) || t == typeof(int) || t == typeof(long) || t == typeof(double) || t == typeof(TimeSpan)));
            if (property is not null)
            {
                data.Add($"{section}:{property.Name}");
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Settings))]
    public async Task AWordWhereAValueGoes_IsAListedError(string key)
    {
        await using var backend = await TestBackend.StartAsync("b");

        var ex = await Assert.ThrowsAsync<GatewayConfigurationException>(
            () => GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)), $"--{key}=maybe"));

        Assert.Contains(ex.Errors, e => e.Key.StartsWith(key.Split(':')[0] + ":" + key.Split(':')[1], StringComparison.Ordinal) && e.Message.Contains("maybe", StringComparison.Ordinal));
    }
}
