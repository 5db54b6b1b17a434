using System.Net;
using System.Text.Json.Nodes;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Telemetry;

public class LoggingReloadTests
{
    private const string Rejected = "gateway.config.reloads|result=rejected";
    private const string Applied = "gateway.config.reloads|result=applied";
    private const string RestartErrors = "gateway.config.restart_errors";
    private const string Category = "YarpGateway.Configuration.GatewayConfigProvider";
    private static readonly TimeSpan ReloadBound = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task ALevelThatIsNotOne_IsRefusedWithItsFile_AndAGoodEditApplies()
    {
        // Before: the platform's filter threw on the edit, which was logged nowhere, counted nowhere, and a restart would
        // have ended with an unhandled exception (exit 134).
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        config["Logging"] = JsonNode.Parse($$"""{ "LogLevel": { "{{Category}}": "Verbose" } }""");
        gateway.WriteConfig(config);
        Assert.True(await Eventually.TrueAsync(() => gateway.Counter(Rejected) == 1, ReloadBound), "not refused: " + gateway.DescribeCounters("gateway.config"));
        var rejection = Assert.Single(gateway.Logs.Lines, l => l.Contains("SectionReloadRejected", StringComparison.Ordinal));
        Assert.Contains($"{gateway.ConfigPath}: Logging:LogLevel:{Category}: 'Verbose' is not a log level: Trace, Debug, Information", rejection, StringComparison.Ordinal);
        Assert.Equal(1, gateway.Counter(RestartErrors));
        using (var response = await client.GetAsync("/"))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // The console logger's settings are checked the same way (its options' binding threw too).
        config["Logging"] = JsonNode.Parse("""{ "Console": { "QueueFullMode": "Foo" } }""");
        gateway.WriteConfig(config);
        Assert.True(await Eventually.TrueAsync(() => gateway.Counter(Rejected) == 2, ReloadBound), "not refused: " + gateway.DescribeCounters("gateway.config"));
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("SectionReloadRejected", StringComparison.Ordinal) && l.Contains($"{gateway.ConfigPath}: Logging:Console:QueueFullMode: 'Foo' is not one of Wait, DropWrite.", StringComparison.Ordinal));

        // A good edit: applied, said with what changed, and in force for what is logged next.
        config["Logging"] = JsonNode.Parse($$"""{ "LogLevel": { "{{Category}}": "None" } }""");
        gateway.WriteConfig(config);
        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("SectionReloaded", StringComparison.Ordinal)), ReloadBound), "the good edit was not applied");
        Assert.Contains(gateway.Logs.Lines, l => l.Contains($"LogLevel:{Category}:", StringComparison.Ordinal) && l.Contains("'None'", StringComparison.Ordinal));
        Assert.Equal(0, gateway.Counter(RestartErrors));

        var applied = gateway.Counter(Applied);
        config["ReverseProxy"]!["Routes"]!["all"]!["Order"] = 5;
        gateway.WriteConfig(config);
        Assert.True(await Eventually.TrueAsync(() => gateway.Counter(Applied) > applied, ReloadBound), "the route edit was not applied");
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains(Category + "[", StringComparison.Ordinal) && l.Contains("revision 2", StringComparison.Ordinal));
    }
}
