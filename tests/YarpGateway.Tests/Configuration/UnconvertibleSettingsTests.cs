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
        => [.. GatewaySettingsSchema.Leaves()
            .Where(s => s.Type == typeof(bool) || s.Type == typeof(int) || s.Type == typeof(long) || s.Type == typeof(double) || s.Type == typeof(TimeSpan) || s.Type.IsEnum)
            .Select(s => s.Key)];

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
