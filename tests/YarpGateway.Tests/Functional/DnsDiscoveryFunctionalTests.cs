using System.Net;
using Microsoft.Extensions.DependencyInjection.Extensions;
using System.Text.Json.Nodes;
using Yarp.ReverseProxy.ServiceDiscovery;
using YarpGateway.Discovery;
using YarpGateway.Tests.Discovery;

namespace YarpGateway.Tests.Functional;

/// <summary>DNS discovery through the gateway, with real DNS for localhost and a scripted resolver for the rest.</summary>
public class DnsDiscoveryFunctionalTests
{
    private static JsonObject DiscoveredCluster(JsonObject config, string cluster)
    {
        var node = config["ReverseProxy"]!["Clusters"]![cluster]!.AsObject();
        node["Metadata"] = new JsonObject { ["Discovery"] = "Dns" };
        return node;
    }

    [Fact]
    public async Task Localhost_BecomesOneDestinationPerAddress_EachGetsTraffic()
    {
        await using var backend = await TestBackend.StartOnBothLoopbacksAsync("both");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        DiscoveredCluster(config, "c1")["Destinations"]!["both"]!["Address"] = $"http://localhost:{backend.Port}/";
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        var expected = (await Dns.GetHostAddressesAsync("localhost")).Select(a => $"both[{a}]").Order(StringComparer.Ordinal).ToArray();

        var result = await Load.RunAsync(gateway, requests: 40, workers: 2);

        Assert.Equal(0, result.Failures);
        var proxy = gateway.Services.GetRequiredService<Yarp.ReverseProxy.IProxyStateLookup>();
        Assert.True(proxy.TryGetCluster("c1", out var cluster));
        Assert.Equal(expected, cluster.Destinations.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(expected.Length, backend.LocalAddresses.Distinct().Count()); // every address got requests
    }

    [Fact]
    public async Task ANameThatNeverResolves_ItsCluster503s_TheOthersServe_AReloadOfAnotherClusterApplies()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var dns = new DnsDiscoveryTests.ScriptedResolver { Failing = { "nowhere.svc" } };
        var config = ProxyConfigJson.Config([("ok", "/ok/{**rest}", "ok"), ("gone", "/gone/{**rest}", "gone")], [("ok", "RoundRobin", [(backend, null)]), ("gone", "RoundRobin", [(backend, null)])]);
        DiscoveredCluster(config, "gone")["Destinations"]!["a"]!["Address"] = "http://nowhere.svc/";
        await using var gateway = await GatewayUnderTest.StartAsync(config, services => UseResolver(services, dns));
        using var client = gateway.CreateProxyClient();

        using (var ok = await client.GetAsync("/ok/x"))
        using (var gone = await client.GetAsync("/gone/x"))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, gone.StatusCode);
        }

        Assert.Contains(gateway.Logs.Lines, l => l.Contains("[DiscoveryFailed] Destination a of cluster gone", StringComparison.Ordinal));

        // A reload that changes only the other cluster applies while the name still fails.
        var changed = ProxyConfigJson.Config([("ok", "/ok/{**rest}", "ok"), ("ok2", "/ok2/{**rest}", "ok"), ("gone", "/gone/{**rest}", "gone")], [("ok", "RoundRobin", [(backend, null)]), ("gone", "RoundRobin", [(backend, null)])]);
        DiscoveredCluster(changed, "gone")["Destinations"]!["a"]!["Address"] = "http://nowhere.svc/";
        gateway.WriteConfig(changed);
        Assert.True(await Eventually.TrueAsync(async () =>
        {
            using var response = await client.GetAsync("/ok2/x");
            return response.StatusCode == HttpStatusCode.OK;
        }, TimeSpan.FromSeconds(10)), "the reload of the other cluster did not apply");

        // The name starts resolving: its cluster serves, without a reload.
        dns.Failing.Clear();
        dns.Addresses["nowhere.svc"] = ["127.0.0.1"];
        var port = backend.Port;
        dns.Ports = port;
        Assert.True(await Eventually.TrueAsync(async () =>
        {
            using var response = await client.GetAsync("/gone/x");
            return response.StatusCode == HttpStatusCode.OK;
        }, TimeSpan.FromSeconds(15)), "the cluster did not pick up its addresses once the name resolved");
    }

    [Fact]
    public async Task PodsAddedAndRemoved_NewOnesGetTraffic_RemovedOnesFinishTheirRequests()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var c = await TestBackend.StartAsync("c");
        var dns = new DnsDiscoveryTests.ScriptedResolver { Addresses = { ["pods.svc"] = [$"127.0.0.1:{a.Port}", $"127.0.0.1:{c.Port}"] } };
        var config = ProxyConfigJson.CatchAll("RoundRobin", (a, null));
        DiscoveredCluster(config, "c1")["Destinations"]!["a"]!["Address"] = "http://pods.svc/";
        config["Gateway"] = new JsonObject { ["Discovery"] = new JsonObject { ["RefreshPeriod"] = "00:00:00.200" } };
        await using var gateway = await GatewayUnderTest.StartAsync(config, services => UseResolver(services, dns));
        using var client = gateway.CreateProxyClient();

        var proxyState = gateway.Services.GetRequiredService<Yarp.ReverseProxy.IProxyStateLookup>();
        Yarp.ReverseProxy.Model.DestinationState Pod(TestBackend backend)
            => proxyState.TryGetCluster("c1", out var cluster) ? cluster.Destinations[$"a[127.0.0.1:{backend.Port}]"] : throw new InvalidOperationException("no cluster c1");
        var staying = Pod(c);
        staying.Health.Passive = Yarp.ReverseProxy.Model.DestinationHealth.Healthy; // state a pod that stays must keep

        // A request in flight on pod a: /hold/pa waits on a and is answered at once by c.
        c.GateFor("pa").SetResult();
        Task<HttpResponseMessage> held;
        do
        {
            held = client.GetAsync("/hold/pa");
        }
        while (!await Eventually.TrueAsync(() => a.Held == 1 || held.IsCompleted, TimeSpan.FromSeconds(5)) || held.IsCompleted);

        // A rollout: pod a goes, pod b comes, pod c stays.
        dns.Addresses["pods.svc"] = [$"127.0.0.1:{b.Port}", $"127.0.0.1:{c.Port}"];
        Assert.True(await Eventually.TrueAsync(async () =>
        {
            using var response = await client.GetAsync("/x");
            return await response.Content.ReadAsStringAsync() == "b";
        }, TimeSpan.FromSeconds(10)), "the new pod got no traffic");
        var after = await Load.RunAsync(gateway, requests: 20, workers: 2);
        Assert.Equal(0, after.ByBackend.GetValueOrDefault("a"));
        Assert.Equal(20, after.ByBackend.GetValueOrDefault("b") + after.ByBackend.GetValueOrDefault("c"));
        Assert.Same(staying, Pod(c)); // the pod that stayed is the same destination, health state and all
        Assert.Equal(Yarp.ReverseProxy.Model.DestinationHealth.Healthy, Pod(c).Health.Passive);

        a.GateFor("pa").SetResult();
        using var finished = await held.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(HttpStatusCode.OK, finished.StatusCode); // the removed pod's request finished
        Assert.Equal("a", await finished.Content.ReadAsStringAsync());
    }

    /// <summary>
    /// An edit of <c>Gateway:Discovery</c> alone: the reload's line said <c>Dns</c> was on while nothing was resolved until
    /// the next edit of <c>ReverseProxy</c> (tried), and a period made shorter waited out the longer one first.
    /// </summary>
    [Fact]
    public async Task DiscoveryTurnedOnByAnEdit_ResolvesAtOnce_AndOffAgain_ThePlainDestinationIsBack()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        var dns = new DnsDiscoveryTests.ScriptedResolver { Addresses = { ["pods.svc"] = [$"127.0.0.1:{b.Port}"] } };
        var config = ProxyConfigJson.CatchAll("RoundRobin", (a, null));
        config["ReverseProxy"]!["Clusters"]!["c1"]!["Destinations"]!["a"]!["Address"] = "http://pods.svc/";
        config["Gateway"] = new JsonObject { ["Discovery"] = new JsonObject { ["Dns"] = false, ["RefreshPeriod"] = "01:00:00" } };
        await using var gateway = await GatewayUnderTest.StartAsync(config, services => UseResolver(services, dns));
        var proxyState = gateway.Services.GetRequiredService<Yarp.ReverseProxy.IProxyStateLookup>();
        string[] Destinations() => proxyState.TryGetCluster("c1", out var cluster) ? [.. cluster.Destinations.Keys.Order(StringComparer.Ordinal)] : [];
        Assert.Equal(["a"], Destinations());

        config["Gateway"] = new JsonObject { ["Discovery"] = new JsonObject { ["Dns"] = true, ["RefreshPeriod"] = "01:00:00" } };
        gateway.WriteConfig(config);
        Assert.True(await Eventually.TrueAsync(() => Destinations().SequenceEqual([$"a[127.0.0.1:{b.Port}]"]), TimeSpan.FromSeconds(10)),
            $"discovery turned on resolved nothing: {string.Join(", ", Destinations())}");

        // A shorter period applies at once too, not after the hour the last resolution set.
        dns.Addresses["pods.svc"] = [$"127.0.0.1:{a.Port}"];
        config["Gateway"] = new JsonObject { ["Discovery"] = new JsonObject { ["Dns"] = true, ["RefreshPeriod"] = "00:00:30" } };
        gateway.WriteConfig(config);
        Assert.True(await Eventually.TrueAsync(() => Destinations().SequenceEqual([$"a[127.0.0.1:{a.Port}]"]), TimeSpan.FromSeconds(10)),
            $"the new addresses waited for the old period: {string.Join(", ", Destinations())}");

        config["Gateway"] = new JsonObject { ["Discovery"] = new JsonObject { ["Dns"] = false } };
        gateway.WriteConfig(config);
        Assert.True(await Eventually.TrueAsync(() => Destinations().SequenceEqual(["a"]), TimeSpan.FromSeconds(10)),
            $"discovery turned off kept the resolved destinations: {string.Join(", ", Destinations())}");
    }

    // Replaces the DNS resolver DnsDiscovery wraps with a scripted one.
    private static void UseResolver(IServiceCollection services, IDestinationResolver inner)
    {
        services.RemoveAll<IDestinationResolver>();
        services.AddSingleton<IDestinationResolver>(sp => ActivatorUtilities.CreateInstance<DnsDiscovery>(sp, inner));
    }
}
