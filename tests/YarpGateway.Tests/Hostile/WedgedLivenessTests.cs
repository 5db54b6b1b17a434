using System.Net;
using System.Net.Sockets;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Hostile;

/// <summary>A gateway that can no longer take connections must fail liveness, so Kubernetes restarts it.</summary>
[Collection(TimingSensitive.Name)]
public class WedgedLivenessTests
{
    [Fact]
    public async Task EveryNewConnectionRefusedAtTheCap_FailsLiveness_AndRecovers()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)),
            "--Gateway:Admission:MaxConcurrentConnections=2", "--Gateway:Health:LiveRefusingConnectionsFor=00:00:01");
        using var management = gateway.CreateManagementClient();
        var traffic = gateway.Services.GetRequiredService<YarpGateway.Endpoints.TrafficCounters>();

        // Two connections that hold the whole cap (each waits inside a request at the backend).
        using var holders = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 2 }) { BaseAddress = gateway.ProxyAddress };
        var held = Enumerable.Range(0, 2).Select(_ => holders.GetAsync("/hold")).ToArray();
        Assert.True(await Eventually.TrueAsync(() => backend.Held == 2, TimeSpan.FromSeconds(10)));
        var accepted = traffic.AcceptedConnections;

        using (var live = await management.GetAsync("/healthz/live"))
        {
            Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        }

        // New clients keep knocking and are refused; liveness turns 503 once that has lasted a second.
        Assert.True(await Eventually.TrueAsync(async () =>
        {
            using var knock = await RawSocket.ConnectAsync(gateway.ProxyAddress);
            await RawSocket.ReceiveUntilClosedAsync(knock);
            using var live = await management.GetAsync("/healthz/live");
            return live.StatusCode == HttpStatusCode.ServiceUnavailable;
        }, TimeSpan.FromSeconds(15)), "liveness stayed 200 while every new connection was refused");
        Assert.Equal(accepted, traffic.AcceptedConnections);
        using (var live = await management.GetAsync("/healthz/live"))
        {
            Assert.Contains("refused every one at its connection cap", await live.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // Room again: the next connection is accepted and liveness is 200.
        backend.Gate.SetResult();
        await Task.WhenAll(held).WaitAsync(TimeSpan.FromSeconds(10));
        holders.Dispose();
        Assert.True(await Eventually.TrueAsync(async () =>
        {
            using var client = gateway.CreateProxyClient();
            try
            {
                using var ok = await client.GetAsync("/ok");
            }
            catch (HttpRequestException)
            {
                return false; // still refused: the held connections are closing
            }

            using var live = await management.GetAsync("/healthz/live");
            return live.StatusCode == HttpStatusCode.OK;
        }, TimeSpan.FromSeconds(15)), "liveness did not recover");
    }

    [Fact]
    public async Task ConnectionsWaitingInTheListenQueueWithNoneAccepted_FailLiveness_AndItRecovers()
    {
        await using var backend = await TestBackend.StartAsync("a");
        // Accept paced at one connection a second stands in for a stalled accept: a limit of 0.3 s
        // sees the second between two accepts (the lowest adaptive rate takes one every few ms).
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)),
            "--Gateway:Admission:Connections:Adaptive:Enabled=false", "--Gateway:Admission:Connections:RatePerSecond=1",
            "--Gateway:Admission:Connections:Burst=1", "--Gateway:Health:LiveRefusingConnectionsFor=00:00:00.300");
        using var management = gateway.CreateManagementClient();
        using (var live = await management.GetAsync("/healthz/live"))
        {
            Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        }

        var clients = new List<Socket>();
        for (var i = 0; i < 10; i++)
        {
            clients.Add(await RawSocket.ConnectAsync(gateway.ProxyAddress));
        }

        var body = string.Empty;
        Assert.True(await Eventually.TrueAsync(async () =>
        {
            using var live = await management.GetAsync("/healthz/live");
            body = await live.Content.ReadAsStringAsync();
            return live.StatusCode == HttpStatusCode.ServiceUnavailable;
        }, TimeSpan.FromSeconds(15)), "liveness stayed 200 while connections waited with none accepted");
        Assert.Contains("wait in its listen queue", body, StringComparison.Ordinal);

        // Nobody waiting any more: 200 again.
        foreach (var client in clients)
        {
            client.Dispose();
        }

        Assert.True(await Eventually.TrueAsync(async () =>
        {
            using var live = await management.GetAsync("/healthz/live");
            return live.StatusCode == HttpStatusCode.OK;
        }, TimeSpan.FromSeconds(20)), "liveness did not recover");
    }

    [Fact]
    public async Task AtTheOpenConnectionsLimit_ClientsWaitingInTheListenQueue_DoNotFailLiveness()
    {
        // Full is not wedged: failing liveness would have Kubernetes restart a pod that serves every
        // connection it holds, and drop them all.
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)),
            "--Gateway:Admission:Connections:MaxOpen=2", "--Gateway:Health:LiveRefusingConnectionsFor=00:00:00.300");
        using var management = gateway.CreateManagementClient();
        var limit = gateway.Services.GetRequiredService<YarpGateway.Endpoints.OpenConnectionLimit>();
        var queue = gateway.Services.GetRequiredService<YarpGateway.Endpoints.ProxyListenQueue>();
        var clients = new List<Socket>();
        for (var i = 0; i < 10; i++)
        {
            clients.Add(await RawSocket.ConnectAsync(gateway.ProxyAddress));
        }

        Assert.True(await Eventually.TrueAsync(() => limit.Open == 2 && queue.Read().Waiting == 8, TimeSpan.FromSeconds(10)),
            $"open {limit.Open}, waiting {queue.Read().Waiting}");

        // Three times the limit, probed all along: 200 throughout.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(1))
        {
            using var live = await management.GetAsync("/healthz/live");
            Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        }

        Assert.Equal(8, queue.Read().Waiting); // still full, still waiting: the check above saw that state
        foreach (var client in clients)
        {
            client.Dispose();
        }
    }

    [Fact]
    public async Task ASchedulerLaterThanTheLimit_FailsLiveness_NotReadiness()
    {
        await using var backend = await TestBackend.StartAsync("a");
        // A limit no scheduler meets stands in for a wedged one (the probe's own figures are what is read).
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)), "--Gateway:Health:LiveMaxSchedulerDelay=00:00:00.0000001");
        using var management = gateway.CreateManagementClient();

        // As soon as the probe has samples (one every 100 ms), every one of them is over the limit.
        var body = string.Empty;
        Assert.True(await Eventually.TrueAsync(async () =>
        {
            using var live = await management.GetAsync("/healthz/live");
            body = await live.Content.ReadAsStringAsync();
            return live.StatusCode == HttpStatusCode.ServiceUnavailable;
        }, TimeSpan.FromSeconds(5)), "liveness stayed 200");
        using var ready = await management.GetAsync("/healthz/ready");

        Assert.Contains("the scheduler is wedged", body, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
    }
}
