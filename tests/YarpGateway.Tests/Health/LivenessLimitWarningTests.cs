using System.Text.Json.Nodes;
using YarpGateway.Health;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Health;

public class LivenessLimitWarningTests
{
    private const string Warning = "[LivenessLimitLow]";

    [Fact]
    public void TheDefaults_AndTheAdvisedFloors_AreNoRisk()
    {
        Assert.Empty(new HealthOptions().RiskyLivenessLimits());
        Assert.Empty(new HealthOptions
        {
            LiveMaxSchedulerDelay = HealthOptions.LowestAdvisedSchedulerDelay,
            LiveRefusingConnectionsFor = HealthOptions.LowestAdvisedRefusingFor,
        }.RiskyLivenessLimits());
    }

    [Fact]
    public void EachLimitBelowItsFloor_IsOneRisk_NamingItsKey()
    {
        var risks = new HealthOptions
        {
            LiveMaxSchedulerDelay = TimeSpan.FromMilliseconds(999),
            LiveRefusingConnectionsFor = TimeSpan.FromSeconds(9),
        }.RiskyLivenessLimits().ToList();

        Assert.Equal(2, risks.Count);
        Assert.StartsWith("Gateway:Health:LiveMaxSchedulerDelay is 00:00:00.9990000:", risks[0], StringComparison.Ordinal);
        Assert.StartsWith("Gateway:Health:LiveRefusingConnectionsFor is 00:00:09:", risks[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task ALowLimit_IsWarnedOfAtStart_AndWhenAReloadSetsOne()
    {
        // Valid, so the gateway starts and serves; but liveness would fail on a pod that is only busy, and Kubernetes
        // would restart it, dropping every connection on it, with nothing said before.
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["Gateway"] = JsonNode.Parse("""{ "Health": { "LiveMaxSchedulerDelay": "00:00:00.010" } }""");
        await using var gateway = await GatewayUnderTest.StartAsync(config);

        var atStart = Assert.Single(gateway.Logs.Lines, line => line.Contains(Warning, StringComparison.Ordinal));
        Assert.Contains("Gateway:Health:LiveMaxSchedulerDelay is 00:00:00.0100000", atStart, StringComparison.Ordinal);

        config["Gateway"]!["Health"] = JsonNode.Parse("""{ "LiveRefusingConnectionsFor": "00:00:02" }""");
        gateway.WriteConfig(config);
        Assert.True(
            await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(line => line.Contains(Warning, StringComparison.Ordinal) && line.Contains("LiveRefusingConnectionsFor is 00:00:02", StringComparison.Ordinal)), TimeSpan.FromSeconds(5)),
            "a reload to a low limit was not warned of");
        Assert.Single(gateway.Logs.Lines, line => line.Contains(Warning, StringComparison.Ordinal) && line.Contains("LiveMaxSchedulerDelay", StringComparison.Ordinal)); // back to its default: not said again
    }

    [Fact]
    public async Task TheShippedLimits_AreNotWarnedOf()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)));
        using var client = gateway.CreateProxyClient();
        using var response = await client.GetAsync("/x");

        Assert.DoesNotContain(gateway.Logs.Lines, line => line.Contains(Warning, StringComparison.Ordinal));
    }
}
