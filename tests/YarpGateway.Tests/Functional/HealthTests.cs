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

    [Fact]
    public async Task Ready_Turns503_WhenAClusterHasNoAvailableDestination_AndBack()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ActivelyChecked(backend));
        using var management = gateway.CreateManagementClient();
        var bound = TimeSpan.FromSeconds(5);

        Assert.True(await Eventually.TrueAsync(async () => (await GetAsync(management, "/healthz/ready")).Status == HttpStatusCode.OK, bound));

        backend.HealthStatus = HttpStatusCode.ServiceUnavailable;
        Assert.True(await Eventually.TrueAsync(async () => (await GetAsync(management, "/healthz/ready")).Status == HttpStatusCode.ServiceUnavailable, bound));
        var (_, body) = await GetAsync(management, "/healthz/ready");
        Assert.Equal("Unhealthy", body.GetProperty("status").GetString());
        Assert.Contains("c1", body.GetProperty("checks").GetProperty("destinations").GetProperty("description").GetString(), StringComparison.Ordinal);

        // Liveness never depends on backends.
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(management, "/healthz/live")).Status);

        backend.HealthStatus = HttpStatusCode.OK;
        Assert.True(await Eventually.TrueAsync(async () => (await GetAsync(management, "/healthz/ready")).Status == HttpStatusCode.OK, bound));
    }

    [Fact]
    public async Task Ready_IgnoresDestinations_WhenNotRequired()
    {
        await using var backend = await TestBackend.StartAsync("a");
        backend.HealthStatus = HttpStatusCode.ServiceUnavailable;
        await using var gateway = await GatewayUnderTest.StartAsync(ActivelyChecked(backend), "--Gateway:Health:RequireAvailableDestinations=false");
        using var management = gateway.CreateManagementClient();

        // Wait until the active check has marked the destination down, then readiness must still be 200.
        var proxy = gateway.Services.GetRequiredService<Yarp.ReverseProxy.IProxyStateLookup>();
        Assert.True(await Eventually.TrueAsync(
            () => proxy.TryGetCluster("c1", out var cluster) && cluster.Destinations.Values.All(d => d.Health.Active == Yarp.ReverseProxy.Model.DestinationHealth.Unhealthy),
            TimeSpan.FromSeconds(5)));
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(management, "/healthz/ready")).Status);
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
