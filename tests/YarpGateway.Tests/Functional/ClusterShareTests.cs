using System.Net;
using YarpGateway.Admission;

namespace YarpGateway.Tests.Functional;

/// <summary>A cluster without a limit of its own holds at most its share of the global limit's slots (Gateway:Admission:ClusterShare).</summary>
public class ClusterShareTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private static readonly string[] SmallGlobal = ["--Gateway:Admission:Global:MaxConcurrency=20", "--Gateway:Admission:Global:MaxQueue=100", "--Gateway:Admission:Global:QueueTimeout=00:00:30"];

    // Tried on the Release build: a backend that accepted connections and never answered, under 4,300 clients, held
    // every one of the 4,096 global slots, and every request to every other cluster waited 5 s and got 503.
    [Fact]
    public async Task AClusterThatDoesNotAnswer_HoldsItsShare_AndTheOtherClustersKeepServing()
    {
        await using var hole = await TestBackend.StartAsync("hole");
        await using var ok = await TestBackend.StartAsync("ok");
        var config = ProxyConfigJson.Config([("hole", "/hold", "hole"), ("ok", "/{**rest}", "ok")], [("hole", "RoundRobin", [(hole, null)]), ("ok", "RoundRobin", [(ok, null)])]);
        await using var gateway = await GatewayUnderTest.StartAsync(config, SmallGlobal);
        using var client = gateway.CreateProxyClient();

        var held = Enumerable.Range(0, 30).Select(_ => client.GetAsync("/hold")).ToList();

        // Half the global limit's 20 slots reach the backend; the rest of its requests are refused at once.
        Assert.True(await Eventually.TrueAsync(() => hole.Held == 10 && held.Count(r => r.IsCompleted) == 20, Bound), $"held={hole.Held} done={held.Count(r => r.IsCompleted)}");
        foreach (var refused in await Task.WhenAll(held.Where(r => r.IsCompleted)))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
        }

        Assert.Equal("ok", await client.GetStringAsync("/x").WaitAsync(Bound));
        Assert.Equal(20, gateway.Counter("gateway.admission.rejected|limit=cluster_share|name=hole|reason=queue_full"));
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("[ClusterShareFull] Cluster hole holds 10 requests, its share of the global limit (Gateway:Admission:ClusterShare 0.5)", StringComparison.Ordinal));

        hole.Gate.SetResult();
        var all = await Task.WhenAll(held).WaitAsync(Bound);
        Assert.Equal(10, all.Count(r => r.StatusCode == HttpStatusCode.OK));
        Assert.Equal(10, hole.Requests);
        Assert.Equal(10, hole.MaxHeld);
    }

    [Fact]
    public async Task StartedStreams_GiveTheirShareBack()
    {
        await using var streams = await TestBackend.StartAsync("streams");
        await using var ok = await TestBackend.StartAsync("ok");
        var config = ProxyConfigJson.Config([("streams", "/stream", "streams"), ("ok", "/{**rest}", "ok")], [("streams", "RoundRobin", [(streams, null)]), ("ok", "RoundRobin", [(ok, null)])]);
        await using var gateway = await GatewayUnderTest.StartAsync(config, SmallGlobal);
        using var client = gateway.CreateProxyClient();

        var subscribers = new List<HttpResponseMessage>();
        for (var i = 0; i < 15; i++) // more than the share of 10, fewer than the global 20
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/stream");
            request.Headers.Accept.ParseAdd("text/event-stream");
            var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead).WaitAsync(Bound);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            subscribers.Add(response);
        }

        Assert.Equal(0, gateway.CounterSum("gateway.admission.rejected|limit=cluster_share"));
        streams.GateFor("stream").SetResult();
        subscribers.ForEach(r => r.Dispose());
    }

    // The share's queue, where WebSocket handshakes wait for it, is the global limit's: a reload that changes the global
    // queue changes the share's (the share was kept while its number of slots stayed the same).
    [Fact]
    public async Task TheSharesQueue_IsTheGlobalLimitsQueue_AndFollowsItOnReload()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        var config = ProxyConfigJson.Config([("a", "/a/{**rest}", "a"), ("b", "/{**rest}", "b")], [("a", "RoundRobin", [(a, null)]), ("b", "RoundRobin", [(b, null)])]);
        config["Gateway"] = Global(maxQueue: 100, queueTimeout: "00:00:30");
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        var limits = gateway.Services.GetRequiredService<AdmissionLimits>();
        var lookup = gateway.Services.GetRequiredService<Yarp.ReverseProxy.IProxyStateLookup>();
        Assert.True(lookup.TryGetCluster("a", out var cluster));
        Assert.Equal(new ConcurrencyLimitSettings(10, 100, TimeSpan.FromSeconds(30)), limits.ShareFor(cluster)!.Settings);

        config["Gateway"] = Global(maxQueue: 7, queueTimeout: "00:00:02");
        gateway.WriteConfig(config);

        var expected = new ConcurrencyLimitSettings(10, 7, TimeSpan.FromSeconds(2));
        Assert.True(await Eventually.TrueAsync(() => limits.ShareFor(cluster)!.Settings == expected, Bound), $"{limits.ShareFor(cluster)!.Settings}");

        static System.Text.Json.Nodes.JsonObject Global(int maxQueue, string queueTimeout) => new()
        {
            ["Admission"] = new System.Text.Json.Nodes.JsonObject
            {
                ["Global"] = new System.Text.Json.Nodes.JsonObject { ["MaxConcurrency"] = 20, ["MaxQueue"] = maxQueue, ["QueueTimeout"] = queueTimeout },
            },
        };
    }

    [Fact]
    public async Task OneCluster_OrAClusterWithItsOwnLimit_HasNoShare()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using (var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)), SmallGlobal))
        {
            using var client = gateway.CreateProxyClient();
            var requests = Enumerable.Range(0, 30).Select(_ => client.GetAsync("/hold")).ToList();
            Assert.True(await Eventually.TrueAsync(() => backend.Held == 20, Bound), $"held={backend.Held}"); // the whole global limit
            Assert.DoesNotContain(gateway.Services.GetRequiredService<AdmissionLimits>().All(), l => l.Kind == AdmissionLimits.ClusterShareKind);
            backend.Gate.SetResult();
            Assert.All(await Task.WhenAll(requests).WaitAsync(Bound), r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        }

        await using var other = await TestBackend.StartAsync("b");
        await using var limited = await TestBackend.StartAsync("limited");
        var config = ProxyConfigJson.Config([("limited", "/hold", "limited"), ("b", "/{**rest}", "b")], [("limited", "RoundRobin", [(limited, null)]), ("b", "RoundRobin", [(other, null)])]);
        config["ReverseProxy"]!["Clusters"]!["limited"]!["Metadata"] = AdmissionConfig.Limit("15", "0");
        await using (var gateway = await GatewayUnderTest.StartAsync(config, SmallGlobal))
        {
            using var client = gateway.CreateProxyClient();
            var requests = Enumerable.Range(0, 30).Select(_ => client.GetAsync("/hold")).ToList();
            Assert.True(await Eventually.TrueAsync(() => limited.Held == 15 && requests.Count(r => r.IsCompleted) == 15, Bound), $"held={limited.Held}"); // its own 15, not a share of 10
            limited.Gate.SetResult();
            await Task.WhenAll(requests).WaitAsync(Bound);
        }
    }
}
