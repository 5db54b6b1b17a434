using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace YarpGateway.Tests.Functional;

public class HealthTests
{
    private static JsonObject ActivelyChecked(TestBackend backend) => JsonNode.Parse($$"""
        { "ReverseProxy": {
            "Routes": { "all": { "ClusterId": "c1", "Match": { "Path": "/{**catch-all}" } } },
            "Clusters": { "c1": {
                "HealthCheck": { "Active": { "Enabled": true, "Interval": "00:00:00.100", "Timeout": "00:00:01", "Policy": "ConsecutiveFailures", "Path": "/health" } },
                "Metadata": { "ConsecutiveFailuresHealthPolicy.Threshold": "1" },
                "Destinations": { "only": { "Address": "{{backend.Address}}" } } } } } }
        """)!.AsObject();

    private static async Task<(HttpStatusCode Status, JsonElement Body)> GetAsync(HttpClient client, string path)
    {
        using var response = await client.GetAsync(path);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
        return (response.StatusCode, body);
    }

    [Fact]
    public async Task Probes_AreHealthyJson_WhenConfigLoadedAndBackendsUp()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")));
        using var management = gateway.CreateManagementClient();

        foreach (var path in new[] { "/healthz/live", "/healthz/ready", "/healthz/startup" })
        {
            var (status, body) = await GetAsync(management, path);
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal("Healthy", body.GetProperty("status").GetString());
        }

        var (_, ready) = await GetAsync(management, "/healthz/ready");
        Assert.Equal("Healthy", ready.GetProperty("checks").GetProperty("config").GetProperty("status").GetString());
        Assert.Equal("Healthy", ready.GetProperty("checks").GetProperty("destinations").GetProperty("status").GetString());
        Assert.Equal("Healthy", ready.GetProperty("checks").GetProperty("shutdown").GetProperty("status").GetString());
    }

    private static JsonObject DeadAndHealthyClusters(TestBackend dead, TestBackend healthy, bool deadGatesReadiness) => JsonNode.Parse($$"""
        { "ReverseProxy": {
            "Routes": {
              "dead": { "ClusterId": "dead", "Match": { "Path": "/dead/{**rest}" } },
              "live": { "ClusterId": "live", "Match": { "Path": "/live/{**rest}" } } },
            "Clusters": {
              "dead": {
                "HealthCheck": { "Active": { "Enabled": true, "Interval": "00:00:00.100", "Timeout": "00:00:01", "Policy": "ConsecutiveFailures", "Path": "/health" } },
                "Metadata": { "ConsecutiveFailuresHealthPolicy.Threshold": "1"{{(deadGatesReadiness ? ", \"ReadinessRequiresDestination\": \"true\"" : "")}} },
                "Destinations": { "only": { "Address": "{{dead.Address}}" } } },
              "live": { "Destinations": { "only": { "Address": "{{healthy.Address}}" } } } } } }
        """)!.AsObject();

    [Fact]
    public async Task OneDeadCluster_LeavesReady200_TheBodyNamesIt_AndTheHealthyRouteServes()
    {
        await using var dead = await TestBackend.StartAsync("dead");
        await using var healthy = await TestBackend.StartAsync("healthy");
        dead.HealthStatus = HttpStatusCode.ServiceUnavailable;
        await using var gateway = await GatewayUnderTest.StartAsync(DeadAndHealthyClusters(dead, healthy, deadGatesReadiness: false));
        using var management = gateway.CreateManagementClient();
        using var proxy = gateway.CreateProxyClient();

        Assert.True(await Eventually.TrueAsync(async () => (await GetAsync(management, "/healthz/ready")).Body.GetProperty("status").GetString() == "Degraded", TimeSpan.FromSeconds(5)));
        var (status, body) = await GetAsync(management, "/healthz/ready");
        Assert.Equal(HttpStatusCode.OK, status);
        var destinations = body.GetProperty("checks").GetProperty("destinations");
        Assert.Equal("Degraded", destinations.GetProperty("status").GetString());
        Assert.Equal("no available destination in cluster(s): dead; readiness does not depend on them", destinations.GetProperty("description").GetString());
        using var served = await proxy.GetAsync("/live/x");
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal("healthy", await served.Content.ReadAsStringAsync());

        // Back to Healthy when its destination is.
        dead.HealthStatus = HttpStatusCode.OK;
        Assert.True(await Eventually.TrueAsync(async () => (await GetAsync(management, "/healthz/ready")).Body.GetProperty("status").GetString() == "Healthy", TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task AClusterThatOptsIn_GatesReadiness_AndBack()
    {
        await using var dead = await TestBackend.StartAsync("dead");
        await using var healthy = await TestBackend.StartAsync("healthy");
        await using var gateway = await GatewayUnderTest.StartAsync(DeadAndHealthyClusters(dead, healthy, deadGatesReadiness: true));
        using var management = gateway.CreateManagementClient();
        var bound = TimeSpan.FromSeconds(5);

        Assert.True(await Eventually.TrueAsync(async () => (await GetAsync(management, "/healthz/ready")).Status == HttpStatusCode.OK, bound));

        dead.HealthStatus = HttpStatusCode.ServiceUnavailable;
        Assert.True(await Eventually.TrueAsync(async () => (await GetAsync(management, "/healthz/ready")).Status == HttpStatusCode.ServiceUnavailable, bound));
        var (_, body) = await GetAsync(management, "/healthz/ready");
        Assert.Equal("Unhealthy", body.GetProperty("status").GetString());
        Assert.Contains("gate readiness (ReadinessRequiresDestination): dead", body.GetProperty("checks").GetProperty("destinations").GetProperty("description").GetString(), StringComparison.Ordinal);

        // Liveness never depends on backends.
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(management, "/healthz/live")).Status);

        dead.HealthStatus = HttpStatusCode.OK;
        Assert.True(await Eventually.TrueAsync(async () => (await GetAsync(management, "/healthz/ready")).Status == HttpStatusCode.OK, bound));
    }

    [Fact]
    public async Task AConfigurationYarpCannotApply_LeavesReadinessUp_WithItsConfigCheckDegradedUntilARestart()
    {
        // After an apply that failed building ASP.NET Core's route table, the table took no later reload (tried by hand),
        // though YARP reports them applied: the check must not turn Healthy again on its own. Here the apply fails in a
        // cluster change listener, one of the ways validation cannot foresee.
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(
            ProxyConfigJson.CatchAll("RoundRobin", (backend, null)),
            services => services.AddSingleton<Yarp.ReverseProxy.Model.IClusterChangeListener, FailsOnCluster>());
        using var management = gateway.CreateManagementClient();
        var bound = TimeSpan.FromSeconds(5);

        var failing = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        failing["ReverseProxy"]!["Clusters"]!["boom"] = JsonNode.Parse($$"""{ "Destinations": { "d": { "Address": "{{backend.Address}}" } } }""");
        gateway.WriteConfig(failing);
        Assert.True(await Eventually.TrueAsync(async () => (await GetAsync(management, "/healthz/ready")).Body.GetProperty("status").GetString() == "Degraded", bound), "the config check did not turn Degraded");
        var (status, body) = await GetAsync(management, "/healthz/ready");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("revision 2 of the proxy configuration could not be applied", body.GetProperty("checks").GetProperty("config").GetProperty("description").GetString(), StringComparison.Ordinal);
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("[ConfigApplyFailed] YARP could not apply revision 2", StringComparison.Ordinal));

        gateway.WriteConfig(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "2"))); // YARP applies this one
        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("revision 3", StringComparison.Ordinal)), bound), "the good reload was not taken");
        Assert.Equal("Degraded", (await GetAsync(management, "/healthz/ready")).Body.GetProperty("checks").GetProperty("config").GetProperty("status").GetString());
    }

    private sealed class FailsOnCluster : Yarp.ReverseProxy.Model.IClusterChangeListener
    {
        public void OnClusterAdded(Yarp.ReverseProxy.Model.ClusterState cluster)
        {
            if (cluster.ClusterId == "boom")
            {
                throw new InvalidOperationException("a listener that fails on cluster 'boom'");
            }
        }

        public void OnClusterChanged(Yarp.ReverseProxy.Model.ClusterState cluster)
        {
        }

        public void OnClusterRemoved(Yarp.ReverseProxy.Model.ClusterState cluster)
        {
        }
    }

    [Fact]
    public async Task TheRemovedGlobalOption_StillStarts_WithAWarningSayingWhatToDo()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ActivelyChecked(backend), "--Gateway:Health:RequireAvailableDestinations=true");

        Assert.Contains(gateway.Logs.Lines, line => line.Contains("RequireAvailableDestinations is set but no longer read", StringComparison.Ordinal)
            && line.Contains("\"ReadinessRequiresDestination\": \"true\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Ready_Turns503_AsSoonAsShutdownStarts()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")));
        var check = gateway.Services.GetServices<Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckService>().Single();
        var lifetime = gateway.Services.GetRequiredService<IHostApplicationLifetime>();

        Assert.Equal(Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Healthy, (await check.CheckHealthAsync(c => c.Tags.Contains("ready"))).Status);
        lifetime.StopApplication();
        var report = await check.CheckHealthAsync(c => c.Tags.Contains("ready"));
        Assert.Equal(Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Unhealthy, report.Status);
        Assert.Equal("shutting down", report.Entries["shutdown"].Description);
    }
}
