using System.Reflection;
using YarpGateway.Configuration;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Configuration;

/// <summary>
/// A value that does not convert, in any <c>Gateway:*</c> section, is a listed configuration error, never an exception
/// out of start-up, nor ignored. Found by this test: <c>Gateway:RequestFiltering:UnderscoresInHeaders=maybe</c> and
/// <c>Gateway:Telemetry:ThrottleKestrelLogs=maybe</c> ended the process with a stack trace (each read before the errors
/// were listed), and a bad <c>Gateway:Memory</c> value started the gateway on the defaults without a word.
/// </summary>
public class UnconvertibleSettingsTests
{
    /// <summary>Every setting, in every section and the sections in them, of a type a word cannot be: a flag, a number, a time or a choice.</summary>
    public static TheoryData<string> Settings()
    {
        var data = new TheoryData<string>();
        foreach (var (section, type) in GatewayServiceCollectionExtensions.SettingsSchema.GatewaySections)
        {
            Add(data, section, type);
        }

        return data;
    }

    private static void Add(TheoryData<string> data, string prefix, Type type)
    {
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite))
        {
            var t = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (t == typeof(bool) || t == typeof(int) || t == typeof(long) || t == typeof(double) || t == typeof(TimeSpan) || t.IsEnum)
            {
                data.Add($"{prefix}:{property.Name}");
            }
            else if (t.IsClass && t.Namespace?.StartsWith("YarpGateway", StringComparison.Ordinal) == true)
            {
                Add(data, $"{prefix}:{property.Name}", t);
            }
        }
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
