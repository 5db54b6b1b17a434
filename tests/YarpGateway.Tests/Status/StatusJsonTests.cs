using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Status;

/// <summary>/status.json on the management port: the figures a person or a script reads.</summary>
public class StatusJsonTests
{
    private static async Task<JsonElement> StatusAsync(GatewayUnderTest gateway)
    {
        using var management = gateway.CreateManagementClient();
        return JsonDocument.Parse(await management.GetStringAsync("/status.json")).RootElement.Clone();
    }

    private static JsonElement Destination(JsonElement status, string cluster, string destination)
        => status.GetProperty("clusters").EnumerateArray().Single(c => c.GetProperty("id").GetString() == cluster)
            .GetProperty("destinations").EnumerateArray().Single(d => d.GetProperty("id").GetString() == destination);

    [Fact]
    public async Task AfterKnownTraffic_ShowsExactCountsWeightsHealthAndLatency_AndAReloadsRevisionAndWeights()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (a, "3"), (b, "1")));

        var load = await Load.RunAsync(gateway, requests: 400, workers: 1);
        Assert.Equal(0, load.Failures);

        JsonElement status = default;
        Assert.True(await Eventually.TrueAsync(async () =>
        {
            status = await StatusAsync(gateway);
            return Destination(status, "c1", "a").GetProperty("requests").GetInt64() + Destination(status, "c1", "b").GetProperty("requests").GetInt64() == 400;
        }, TimeSpan.FromSeconds(5)), "the requests are not all counted");

        Assert.Equal(1, status.GetProperty("revision").GetInt64());
        Assert.False(status.GetProperty("draining").GetBoolean());
        var cluster = status.GetProperty("clusters").EnumerateArray().Single();
        Assert.Equal("WeightedRoundRobin", cluster.GetProperty("loadBalancingPolicy").GetString());
        var destinationA = Destination(status, "c1", "a");
        Assert.Equal(300, destinationA.GetProperty("requests").GetInt64());
        Assert.Equal(100, Destination(status, "c1", "b").GetProperty("requests").GetInt64());
        Assert.Equal(3, destinationA.GetProperty("weight").GetInt32());
        Assert.Equal(a.Address.ToString(), destinationA.GetProperty("address").GetString());
        Assert.Equal(0, destinationA.GetProperty("errors").GetInt64());
        Assert.False(destinationA.GetProperty("ejected").GetBoolean());
        Assert.Equal(60, destinationA.GetProperty("requestsLastMinute").GetArrayLength());
        Assert.True(destinationA.GetProperty("latencyP99Ms").GetDouble() > 0);
        Assert.True(status.GetProperty("connections").GetProperty("accepted").GetInt64() >= 1);
        var backend = status.GetProperty("connections").GetProperty("backend");
        Assert.Equal(2, backend.GetProperty("open").GetInt32()); // one worker: one pooled connection per destination
        Assert.True(backend.GetProperty("limit").ValueKind is System.Text.Json.JsonValueKind.Null or System.Text.Json.JsonValueKind.Number);
        Assert.Equal(0, backend.GetProperty("refused").GetInt64());
        Assert.Equal(0, status.GetProperty("admission").GetProperty("connections").GetProperty("waiting").GetInt64());
        Assert.Equal(0, status.GetProperty("admission").GetProperty("connections").GetProperty("listenQueue").GetInt64());
        Assert.True(status.GetProperty("admission").GetProperty("connections").GetProperty("listenQueueCapacity").GetInt64() >= 128); // 4096, or a lower somaxconn
        Assert.Equal(0, status.GetProperty("admission").GetProperty("connections").GetProperty("acceptPausedSeconds").GetDouble());
        var global = status.GetProperty("admission").GetProperty("limits").EnumerateArray().Single(l => l.GetProperty("kind").GetString() == "global");
        Assert.Equal((4096, 0, 0), (global.GetProperty("limit").GetInt32(), global.GetProperty("queued").GetInt32(), global.GetProperty("rejected").GetInt32()));
        var memory = status.GetProperty("memory");
        Assert.True(memory.GetProperty("workingSetBytes").GetInt64() > memory.GetProperty("gcCommittedBytes").GetInt64(), memory.ToString());
        Assert.True(memory.GetProperty("gcCommittedBytes").GetInt64() > 0);
        Assert.Equal((0, 0, 0), (memory.GetProperty("compactions").GetInt64(), memory.GetProperty("compactionsSkipped").GetInt64(), memory.GetProperty("returnedBytes").GetInt64()));

        gateway.WriteConfig(ProxyConfigJson.CatchAll("WeightedRoundRobin", (a, "1"), (b, "5")));
        Assert.True(await Eventually.TrueAsync(async () => (await StatusAsync(gateway)).GetProperty("revision").GetInt64() == 2, TimeSpan.FromSeconds(5)), "no new revision");
        var reloaded = await StatusAsync(gateway);
        Assert.Equal(5, Destination(reloaded, "c1", "b").GetProperty("weight").GetInt32());
        Assert.Equal(300, Destination(reloaded, "c1", "a").GetProperty("requests").GetInt64()); // counts since start survive a reload
    }

    [Fact]
    public async Task AnEjectedDestination_ShowsEjected()
    {
        await using var a = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (a, null));
        config["ReverseProxy"]!["Clusters"]!["c1"]!["Destinations"]!["dead"] = new JsonObject { ["Address"] = $"http://127.0.0.1:{LoopbackPort.Unused()}/" };
        await using var gateway = await GatewayUnderTest.StartAsync(config);

        await Load.RunAsync(gateway, requests: 20, workers: 1); // the dead one refuses: ejected after 3 (passive health is on by default)

        var status = await StatusAsync(gateway);
        Assert.True(Destination(status, "c1", "dead").GetProperty("ejected").GetBoolean());
        Assert.Equal("Unhealthy", Destination(status, "c1", "dead").GetProperty("health").GetString());
        Assert.False(Destination(status, "c1", "a").GetProperty("ejected").GetBoolean());
    }

    [Fact]
    public async Task ADestinationMovedToAnotherBackend_ShowsNoneOfTheOldBackendsFigures()
    {
        // A destination whose backend answers 500s; the operator points it at another backend. The page must not go on
        // showing the old backend's errors (for a minute in the last minute's figures, for the process's life in the totals).
        await using var old = await TestBackend.StartAsync("old");
        await using var replacement = await TestBackend.StartAsync("new");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll(old.Address));
        using var client = gateway.CreateProxyClient();
        for (var i = 0; i < 5; i++)
        {
            using var failed = await client.GetAsync("/answer-at-head/500");
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }

        Assert.True(await Eventually.TrueAsync(async () => Destination(await StatusAsync(gateway), "c1", "d1").GetProperty("errors").GetInt64() == 5, TimeSpan.FromSeconds(5)), "the errors are not counted");

        gateway.WriteConfig(ProxyConfigJson.CatchAll(replacement.Address));
        Assert.True(await Eventually.TrueAsync(async () => (await StatusAsync(gateway)).GetProperty("revision").GetInt64() == 2, TimeSpan.FromSeconds(5)), "no new revision");

        var moved = Destination(await StatusAsync(gateway), "c1", "d1");
        Assert.Equal(replacement.Address.ToString(), moved.GetProperty("address").GetString());
        Assert.Equal((0, 0), (moved.GetProperty("requests").GetInt64(), moved.GetProperty("errors").GetInt64()));
        Assert.Equal(0, moved.GetProperty("requestsLastMinute").EnumerateArray().Sum(s => s.GetInt64()));

        using var answered = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
        Assert.True(await Eventually.TrueAsync(async () => Destination(await StatusAsync(gateway), "c1", "d1").GetProperty("requests").GetInt64() == 1, TimeSpan.FromSeconds(5)), "the new backend's request is not counted");
    }

    [Fact]
    public async Task OnTheProxyPort_TheStatusPathsAreOrdinaryOnes_OnManagementThePageIsSelfContained()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.Config(("api", "/api/{**rest}", "c1"), ("c1", "RoundRobin", [(a, null)])));
        using var proxy = gateway.CreateProxyClient();

        foreach (var path in new[] { "/status.json", "/status", "/status.js" })
        {
            using var response = await proxy.GetAsync(path);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }

        using var management = gateway.CreateManagementClient();
        using var page = await management.GetAsync("/status");
        Assert.Equal("text/html; charset=utf-8", page.Content.Headers.ContentType!.ToString());
        Assert.DoesNotContain("http", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal); // no external asset: it works air-gapped
    }
}
