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

    // Handshakes are held to the global limit, not to their cluster's share of it (which has no queue: a reconnect storm to a
    // WebSocket backend slower than the storm had up to a third of its handshakes refused by it).
    [Fact]
    public async Task HandshakesAnsweredLate_AreHeldToTheGlobalLimit_NotToTheirClustersShare()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var other = await TestBackend.StartAsync("b");
        var config = ProxyConfigJson.Config(
            [("all", "/{**catch-all}", "c1"), ("other", "/other/{**rest}", "c2")],
            [("c1", "RoundRobin", [(backend, null)]), ("c2", "RoundRobin", [(other, null)])]);
        await using var gateway = await GatewayUnderTest.StartAsync(config,
            "--Gateway:Admission:Global:MaxConcurrency=4", "--Gateway:Admission:Global:MaxQueue=0"); // c1's share: 2

        var held = new List<Socket>();
        try
        {
            for (var i = 0; i < 4; i++)
            {
                var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);
                held.Add(socket);
                await socket.SendAsync(Handshake("/hold"));
            }

            Assert.True(await Eventually.TrueAsync(() => backend.Held == 4, TimeSpan.FromSeconds(10)), $"{backend.Held} of 4 handshakes reached the backend");
            using var fifth = await RawSocket.ConnectAsync(gateway.ProxyAddress);
            var refused = await RawSocket.ExchangeAsync(fifth, Handshake("/x"));

            Assert.StartsWith("HTTP/1.1 503", refused, StringComparison.Ordinal);
            Assert.Equal(1, gateway.Counter("gateway.admission.rejected|limit=global|name=global|reason=queue_full"));
            Assert.Equal(1, gateway.CounterSum("gateway.admission.rejected")); // none by the share
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
