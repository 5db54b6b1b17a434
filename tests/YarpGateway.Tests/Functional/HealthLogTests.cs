using System.Net;

namespace YarpGateway.Tests.Functional;

/// <summary>What the log says while a backend is down: its changes, once, not one line per probe.</summary>
public class HealthLogTests
{
    [Fact]
    public async Task AFailingActiveHealthCheck_IsLoggedOnceWhenItTurnsAndOnceWhenItRecovers_NotPerProbe()
    {
        await using var backend = await TestBackend.StartAsync("a");
        backend.HealthStatus = HttpStatusCode.ServiceUnavailable;
        var config = System.Text.Json.Nodes.JsonNode.Parse($$"""
            { "ReverseProxy": {
                "Routes": { "all": { "ClusterId": "c1", "Match": { "Path": "/{**catch-all}" } } },
                "Clusters": { "c1": {
                    "HealthCheck": { "Active": { "Enabled": true, "Interval": "00:00:00.050", "Timeout": "00:00:01", "Policy": "ConsecutiveFailures", "Path": "/health" } },
                    "Metadata": { "ConsecutiveFailuresHealthPolicy.Threshold": "1" },
                    "Destinations": { "only": { "Address": "{{backend.Address}}" } } } } } }
            """)!;
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var management = gateway.CreateManagementClient();
        var proxy = gateway.Services.GetRequiredService<Yarp.ReverseProxy.IProxyStateLookup>();
        bool Active(Yarp.ReverseProxy.Model.DestinationHealth health) => proxy.TryGetCluster("c1", out var cluster) && cluster.Destinations["only"].Health.Active == health;

        // Many probes fail (every 50 ms), and readiness is probed repeatedly meanwhile.
        Assert.True(await Eventually.TrueAsync(() => Active(Yarp.ReverseProxy.Model.DestinationHealth.Unhealthy), TimeSpan.FromSeconds(5)));
        for (var i = 0; i < 5; i++)
        {
            using var ready = await management.GetAsync("/healthz/ready");
        }

        using (var client = gateway.CreateProxyClient())
        using (var served = await client.GetAsync("/anyway"))
        {
            Assert.Equal(HttpStatusCode.OK, served.StatusCode); // HealthyOrPanic, as the line says
        }

        var probed = backend.HealthProbes;
        Assert.True(await Eventually.TrueAsync(() => backend.HealthProbes >= probed + 10, TimeSpan.FromSeconds(5)), "no further probes");
        backend.HealthStatus = HttpStatusCode.OK;
        Assert.True(await Eventually.TrueAsync(() => Active(Yarp.ReverseProxy.Model.DestinationHealth.Healthy), TimeSpan.FromSeconds(5)));

        // The policy sets the destination's health, then the line is logged: wait for the line itself.
        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("[ActiveHealthHealthy]", StringComparison.Ordinal)), TimeSpan.FromSeconds(5)), "no ActiveHealthHealthy line");
        var lines = gateway.Logs.Lines.ToList();
        Assert.Single(lines, l => l.Contains("[ActiveHealthUnhealthy] Destination only of cluster c1 failed its active health checks (status 503)", StringComparison.Ordinal));
        Assert.Single(lines, l => l.Contains("[ActiveHealthAllFailing] Every destination of cluster c1 (1) fails its active health checks: requests go to all of them anyway", StringComparison.Ordinal));
        Assert.Single(lines, l => l.Contains("[ActiveHealthHealthy] Destination only of cluster c1 passes its active health checks again (status 200)", StringComparison.Ordinal));
        Assert.Single(lines, l => l.Contains("[HealthCheckChanged] Health check 'destinations' is Degraded", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("Yarp.ReverseProxy.Health.ActiveHealthCheckMonitor", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("DefaultHealthCheckService", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("Yarp.ReverseProxy.Health.DestinationHealthUpdater", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ADeadDestination_IsLoggedOnceWhenEjected_WithTheReason_NotAgainByYarp()
    {
        await using var a = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (a, null));
        config["ReverseProxy"]!["Clusters"]!["c1"]!["Destinations"]!["dead"] = new System.Text.Json.Nodes.JsonObject { ["Address"] = $"http://127.0.0.1:{LoopbackPort.Unused()}/" };
        await using var gateway = await GatewayUnderTest.StartAsync(config);

        await Load.RunAsync(gateway, requests: 20, workers: 1); // the dead one refuses: ejected after 3 (passive health is on by default)

        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("[DestinationEjected]", StringComparison.Ordinal)), TimeSpan.FromSeconds(5)), "no DestinationEjected line");
        var lines = gateway.Logs.Lines.ToList();
        var ejected = Assert.Single(lines, l => l.Contains("[DestinationEjected] Destination dead of cluster c1 ejected (", StringComparison.Ordinal));
        Assert.Contains("connection attempts in a row failed; the last: HttpRequestException: Connection refused", ejected, StringComparison.Ordinal); // what failed, not only how often
        Assert.DoesNotContain(lines, l => l.Contains("Yarp.ReverseProxy.Health.DestinationHealthUpdater", StringComparison.Ordinal));
    }
}
