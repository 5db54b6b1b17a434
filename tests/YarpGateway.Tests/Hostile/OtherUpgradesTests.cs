using System.Net.Sockets;
using System.Text;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Hostile;

/// <summary>
/// Upgrades that do not end in a relayed WebSocket, and what they are admitted as. An <c>h2c</c> upgrade passed on would let a
/// client speak HTTP/2 straight to a backend that accepts it, past every route, policy and limit of the gateway (h2c smuggling):
/// its <c>Upgrade</c>, <c>HTTP2-Settings</c> and <c>Connection</c> headers are dropped and the request served, and admitted, as
/// an ordinary one. YARP passes one other upgrade, <c>SPDY/3.1</c> (kubectl's exec and port-forward through a proxy), as a byte
/// tunnel; pinned, as documented. A WebSocket handshake that the backend answers as a GET holds its slots until answered.
/// </summary>
public class OtherUpgradesTests
{
    // A backend that switches to whatever it is asked to, then echoes: what a permissive h2c server would allow.
    private static Task<RawTcpBackend> StartSwitchingBackendAsync() => RawTcpBackend.StartAsync(async (socket, head, cancel) =>
    {
        var upgrade = head.Split("\r\n").FirstOrDefault(l => l.StartsWith("Upgrade:", StringComparison.OrdinalIgnoreCase));
        if (upgrade is null)
        {
            await socket.SendAsync(Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), cancel);
            return;
        }

        await socket.SendAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n{upgrade}\r\n\r\n"), cancel);
        var buffer = new byte[1024];
        int read;
        while ((read = await socket.ReceiveAsync(buffer, cancel)) > 0)
        {
            await socket.SendAsync(buffer.AsMemory(0, read), cancel);
        }
    });

    private static byte[] UpgradeRequest(string protocol)
        => Encoding.ASCII.GetBytes($"GET /x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: {protocol}\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n");

    [Theory]
    [InlineData("h2c")]
    [InlineData("foo/1")]
    public async Task AnUpgradeToAnotherProtocol_IsNotPassedOn_TheRequestIsServedAsAnOrdinaryOne(string protocol)
    {
        await using var backend = await StartSwitchingBackendAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll(backend.Address));
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);

        var head = await RawSocket.ExchangeAsync(socket, UpgradeRequest(protocol));

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        var forwarded = Assert.Single(backend.Heads);
        Assert.DoesNotContain("Upgrade", forwarded, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("HTTP2-Settings", forwarded, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(protocol, forwarded, StringComparison.OrdinalIgnoreCase);
    }

    // Counted as upgrades, they skipped every concurrency limit (upgrades hold no slot: a WebSocket would hold it for
    // hours): tried with a global limit of 4, 20 such GETs at once all reached a slow backend, 20 plain ones got 4 through.
    [Theory]
    [InlineData("h2c")]
    [InlineData("foo/1")]
    public async Task AnUpgradeToAnotherProtocol_IsAdmittedAsTheOrdinaryRequestItIs(string protocol)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(
            ProxyConfigJson.CatchAll("RoundRobin", (backend, null)),
            "--Gateway:Admission:Global:MaxConcurrency=1", "--Gateway:Admission:Global:MaxQueue=0");
        using var client = gateway.CreateProxyClient();
        var held = client.GetAsync("/hold");
        Assert.True(await Eventually.TrueAsync(() => backend.Held == 1, TimeSpan.FromSeconds(10)));

        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        var head = await RawSocket.ExchangeAsync(socket, UpgradeRequest(protocol));

        Assert.StartsWith("HTTP/1.1 503", head, StringComparison.Ordinal);
        Assert.Equal(1, gateway.Counter("gateway.admission.rejected|limit=global|name=global|reason=queue_full"));
        Assert.Equal(1, backend.Requests);
        backend.Gate.SetResult();
        await held.WaitAsync(TimeSpan.FromSeconds(10));
    }

    // A GET with a WebSocket's handshake headers to a backend that does not upgrade, and answers it as a GET: the handshake
    // holds its slots until it is answered. When upgrades skipped the limits, twenty such GETs at once all reached a slow
    // backend through a global limit of 4.
    [Theory]
    [InlineData("global")]
    [InlineData("route")]
    [InlineData("cluster")]
    public async Task AWebSocketHandshakeTheBackendAnswersAsAGet_IsHeldToTheLimitsUntilAnswered(string limit)
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        var args = new List<string>();
        if (limit == "global")
        {
            args.AddRange(["--Gateway:Admission:Global:MaxConcurrency=1", "--Gateway:Admission:Global:MaxQueue=0"]);
        }
        else
        {
            var node = limit == "route" ? config["ReverseProxy"]!["Routes"]!["all"]! : config["ReverseProxy"]!["Clusters"]!["c1"]!;
            node["Metadata"] = new System.Text.Json.Nodes.JsonObject { ["MaxConcurrency"] = "1" };
        }

        await using var gateway = await GatewayUnderTest.StartAsync(config, [.. args]);
        using var first = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        await first.SendAsync(Handshake("/hold"));
        Assert.True(await Eventually.TrueAsync(() => backend.Held == 1, TimeSpan.FromSeconds(10)), "the first handshake did not reach the backend");

        using var second = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        var refused = await RawSocket.ExchangeAsync(second, Handshake("/x"));
        backend.Gate.SetResult();
        var answered = await RawSocket.ReceiveResponseHeadAsync(first);

        Assert.StartsWith("HTTP/1.1 503", refused, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200", answered, StringComparison.Ordinal);
        Assert.Equal(1, backend.Requests);
        Assert.Equal(1, gateway.CounterSum("gateway.admission.rejected"));
    }

    // A WebSocket backend that stops answering handshakes while its clients keep reconnecting: past its cluster's share of the
    // global limit (2 of 4 here) the handshakes wait in the share's queue, holding no global slot, so the other clusters keep
    // theirs. Before, with no share for handshakes, they took every global slot and the other cluster's requests waited out
    // the queue and got 503. (The share's queue is why it can apply: without one, a reconnect storm to a slow but working
    // backend had up to a third of its handshakes refused.)
    [Fact]
    public async Task HandshakesAnsweredLate_WaitForTheirClustersShare_SoOtherClustersKeepTheirSlots()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var other = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(TwoClusters(backend, other),
            "--Gateway:Admission:Global:MaxConcurrency=4", "--Gateway:Admission:Global:QueueTimeout=00:00:10"); // c1's share: 2
        var share = ShareOf(gateway, "c1");

        var held = new List<Socket>();
        try
        {
            for (var i = 0; i < 4; i++)
            {
                var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);
                held.Add(socket);
                await socket.SendAsync(Handshake("/hold"));
            }

            Assert.True(await Eventually.TrueAsync(() => backend.Held == 2 && share.QueueDepth == 2, TimeSpan.FromSeconds(10)),
                $"{backend.Held} handshakes at the backend, {share.QueueDepth} waiting for the share");
            using var client = gateway.CreateProxyClient();
            var others = await Task.WhenAll(client.GetAsync("/other/x"), client.GetAsync("/other/y"));
            Assert.All(others, response => Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode));
            Assert.Equal(2, backend.Held);

            backend.Gate.SetResult();
            foreach (var socket in held)
            {
                Assert.StartsWith("HTTP/1.1 200", await RawSocket.ReceiveResponseHeadAsync(socket), StringComparison.Ordinal);
            }

            Assert.Equal(4, backend.Requests);
            Assert.Equal(0, gateway.CounterSum("gateway.admission.rejected"));
        }
        finally
        {
            backend.Gate.TrySetResult();
            foreach (var socket in held)
            {
                socket.Dispose();
            }
        }
    }

    // The wait for the share is the global limit's: bounded by its QueueTimeout, then 503.
    [Fact]
    public async Task AHandshakeWaitingForItsClustersShare_Gets503AfterTheQueueTimeout()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var other = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(TwoClusters(backend, other),
            "--Gateway:Admission:Global:MaxConcurrency=2", "--Gateway:Admission:Global:QueueTimeout=00:00:01"); // c1's share: 1
        using var first = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        await first.SendAsync(Handshake("/hold"));
        Assert.True(await Eventually.TrueAsync(() => backend.Held == 1, TimeSpan.FromSeconds(10)), "the first handshake did not reach the backend");

        using var second = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        var refused = await RawSocket.ExchangeAsync(second, Handshake("/x"));
        backend.Gate.SetResult();

        Assert.StartsWith("HTTP/1.1 503", refused, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200", await RawSocket.ReceiveResponseHeadAsync(first), StringComparison.Ordinal);
        Assert.Equal(1, gateway.Counter("gateway.admission.rejected|limit=cluster_share|name=c1|reason=queue_timeout"));
        Assert.Equal(1, backend.Requests);
    }

    private static System.Text.Json.Nodes.JsonObject TwoClusters(TestBackend backend, TestBackend other)
        => ProxyConfigJson.Config(
            [("all", "/{**catch-all}", "c1"), ("other", "/other/{**rest}", "c2")],
            [("c1", "RoundRobin", [(backend, null)]), ("c2", "RoundRobin", [(other, null)])]);

    private static YarpGateway.Admission.ConcurrencyLimit ShareOf(GatewayUnderTest gateway, string cluster)
    {
        var limits = gateway.Services.GetRequiredService<YarpGateway.Admission.AdmissionLimits>();
        var state = gateway.Services.GetRequiredService<Yarp.ReverseProxy.IProxyStateLookup>().TryGetCluster(cluster, out var found) ? found : null;
        return limits.ShareFor(state!)!;
    }

    private static byte[] Handshake(string path)
        => Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");

    // Its slot of the global limit (1 here) is given back once the tunnel is open, as a WebSocket's is.
    [Fact]
    public async Task ASpdyUpgrade_IsTunnelledAsYarpDoes_WithoutItsHttp2Settings_AndHoldsNoSlotOnceOpen()
    {
        await using var backend = await StartSwitchingBackendAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll(backend.Address),
            "--Gateway:Admission:Global:MaxConcurrency=1", "--Gateway:Admission:Global:MaxQueue=0");
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);

        var head = await RawSocket.ExchangeAsync(socket, UpgradeRequest("SPDY/3.1"));
        Assert.StartsWith("HTTP/1.1 101", head, StringComparison.Ordinal);
        await socket.SendAsync(Encoding.ASCII.GetBytes("tunnel"));
        var echoed = await RawSocket.ReceiveAtLeastAsync(socket, 6);

        Assert.Equal("tunnel", Encoding.ASCII.GetString(echoed));
        var forwarded = Assert.Single(backend.Heads);
        Assert.Contains("Upgrade: SPDY/3.1", forwarded, StringComparison.Ordinal);
        Assert.DoesNotContain("HTTP2-Settings", forwarded, StringComparison.OrdinalIgnoreCase);

        using var client = gateway.CreateProxyClient();
        using var plain = await client.GetAsync("/y");
        Assert.Equal(System.Net.HttpStatusCode.OK, plain.StatusCode);
        Assert.Equal(2, gateway.Counter("gateway.admission.admitted|limit=global|name=global"));
        socket.Shutdown(SocketShutdown.Both);
    }
}
