using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using YarpGateway.Tests.Functional;
using YarpGateway.WebSockets;

namespace YarpGateway.Tests.WebSockets;

/// <summary>
/// The lean connector for WebSocket upgrades (issue 26) against a backend that answers with exact
/// bytes over a real socket: refusals reach the client with their status and body, a backend that
/// closes or says nothing during the handshake gets the client a gateway error, and frames sent in
/// the same packet as the 101 are not lost. The rest of the WebSocket suite runs through it too.
/// </summary>
public class UpgradeConnectorTests
{
    [Theory]
    [InlineData("Content-Length: 5\r\n\r\nnope!", "nope!")]
    [InlineData("Transfer-Encoding: chunked\r\n\r\n4\r\nnope\r\n1;ext=1\r\n!\r\n0\r\n\r\n", "nope!")]
    [InlineData("Connection: close\r\n\r\nnope!", "nope!")]
    public async Task BackendRefusesTheUpgrade_TheClientGetsItsStatusAndBody(string rest, string body)
    {
        await using var backend = await RawTcpBackend.StartAsync(async (socket, _) =>
            await socket.SendAsync(Encoding.ASCII.GetBytes("HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n" + rest)));
        await using var gateway = await GatewayUnderTest.StartAsync(Route(backend.Address));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        await using var client = await RawWebSocketClient.ConnectAsync(gateway.ProxyAddress, "/ws");

        Assert.Equal(403, client.Status);
        Assert.Contains("text/plain", client.ResponseHeaders, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(body, await client.ReadBodyAsync(timeout.Token));
        Assert.Equal(1, backend.Connections);
    }

    [Fact]
    public async Task BackendClosesDuringTheHandshake_TheClientGets502()
    {
        await using var backend = await RawTcpBackend.StartAsync((socket, _) =>
        {
            socket.Close();
            return Task.CompletedTask;
        });
        await using var gateway = await GatewayUnderTest.StartAsync(Route(backend.Address));

        await using var client = await RawWebSocketClient.ConnectAsync(gateway.ProxyAddress, "/ws");

        Assert.Equal(502, client.Status);
    }

    [Fact]
    public async Task BackendNeverAnswersTheHandshake_TheClientGets504AfterTheActivityTimeout()
    {
        await using var backend = await RawTcpBackend.StartAsync((_, cancellationToken) => Task.Delay(Timeout.Infinite, cancellationToken));
        var config = Route(backend.Address);
        config["ReverseProxy"]!["Clusters"]!["ws"]!["HttpRequest"] = new JsonObject { ["ActivityTimeout"] = "00:00:00.500" };
        await using var gateway = await GatewayUnderTest.StartAsync(config);

        await using var client = await RawWebSocketClient.ConnectAsync(gateway.ProxyAddress, "/ws").WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(504, client.Status);
    }

    [Fact]
    public async Task NothingListening_TheClientGets502_AndItIsAConnectError()
    {
        await using var gateway = await GatewayUnderTest.StartAsync(Route(new Uri($"http://127.0.0.1:{LoopbackPort.Unused()}/")));

        await using var client = await RawWebSocketClient.ConnectAsync(gateway.ProxyAddress, "/ws");

        Assert.Equal(502, client.Status);
        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("Connection refused", StringComparison.OrdinalIgnoreCase)), TimeSpan.FromSeconds(5)), "the connect error was not logged as one");
    }

    [Fact]
    public async Task ConnectTimeout_IsReportedAsSocketsHttpHandlerReportsIt_504NamingIt()
    {
        using var blackhole = new BacklogFullListener();
        var config = Route(new Uri($"http://127.0.0.1:{blackhole.Port}/"));
        config["ReverseProxy"]!["Clusters"]!["ws"]!["Metadata"] = new JsonObject { ["ConnectTimeout"] = "00:00:00.500", ["MaxRetries"] = "0" };
        await using var gateway = await GatewayUnderTest.StartAsync(config);

        await using var client = await RawWebSocketClient.ConnectAsync(gateway.ProxyAddress, "/ws").WaitAsync(TimeSpan.FromSeconds(5));

        Assert.Equal(504, client.Status);
        Assert.Equal(1, gateway.Counter("gateway.proxy.timeouts|cluster=ws|kind=connect")); // a connect timeout, not an activity timeout
    }

    /// <summary>
    /// The request head goes out whole, and the socket does not keep it: Socket.SendAsync keeps its send operation for the
    /// socket's next send, and with it the last buffer sent, and an idle WebSocket's backend socket never sends again
    /// (about 690 bytes per idle WebSocket with both, bench/websockets-heap.sh).
    /// </summary>
    [Fact]
    public async Task TheRequestHead_IsSentWhole_AndNotKeptByTheSocket()
    {
        var (socket, backend) = await UpgradedSocketStreamTests.ConnectedPairAsync();
        using var gatewaySide = socket;
        using var backendSide = backend;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        var head = await SendHeadAsync(socket, 3000, timeout.Token);

        var received = new byte[3000];
        var length = 0;
        while (length < received.Length)
        {
            length += await backend.ReceiveAsync(received.AsMemory(length), SocketFlags.None, timeout.Token);
        }

        Assert.All(received, b => Assert.Equal((byte)'h', b));
        Assert.True(await Eventually.TrueAsync(() => { GC.Collect(); GC.WaitForPendingFinalizers(); return !head.IsAlive; }, TimeSpan.FromSeconds(5)), "the socket keeps the head it sent");
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static async Task<WeakReference> SendHeadAsync(Socket socket, int length, CancellationToken cancellationToken)
    {
        var head = new byte[length];
        head.AsSpan().Fill((byte)'h');
        using var send = new SocketSend(); // as UpgradeConnector sends the head
        await send.SendAllAsync(socket, head, cancellationToken);
        return new WeakReference(head);
    }

    [Fact]
    public async Task FramesInTheSamePacketAsThe101_ReachTheClient_ThenTheWebSocketWorksBothWays()
    {
        await using var backend = await RawTcpBackend.StartAsync(async (socket, cancellationToken) =>
        {
            var head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
            await socket.SendAsync(Encoding.ASCII.GetBytes(head).Concat(WebSocketFrames.TextFrame("early")).ToArray()); // one send, one packet
            var buffer = new byte[256];
            var read = await socket.ReceiveAsync(buffer, cancellationToken); // the client's masked frame
            await socket.SendAsync(WebSocketFrames.TextFrame($"got {read} bytes"), cancellationToken);
        });
        await using var gateway = await GatewayUnderTest.StartAsync(Route(backend.Address));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        await using var client = await RawWebSocketClient.ConnectAsync(gateway.ProxyAddress, "/ws", key: "dGhlIHNhbXBsZSBub25jZQ==");

        Assert.Equal(101, client.Status);
        Assert.Equal("early", (await client.ReadFrameAsync(timeout.Token))!.Text);
        await client.SendAsync(WebSocketFrames.TextFrame("hello", masked: true), timeout.Token);
        Assert.Equal("got 11 bytes", (await client.ReadFrameAsync(timeout.Token))!.Text);
    }

    [Fact]
    public async Task TraceContext_ReachesTheBackendAsThroughSocketsHttpHandler()
    {
        const string Traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        var seen = new List<string>();
        foreach (var lean in new[] { "true", "false" })
        {
            await using var backend = await RawTcpBackend.StartAsync(async (socket, _) =>
                await socket.SendAsync(Encoding.ASCII.GetBytes("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")));
            await using var gateway = await GatewayUnderTest.StartAsync(Route(backend.Address), $"--Gateway:WebSockets:LeanBackendConnector={lean}");

            await using var client = await RawWebSocketClient.ConnectAsync(gateway.ProxyAddress, "/ws", extraHeaders: $"traceparent: {Traceparent}\r\n");

            Assert.Equal(403, client.Status);
            var head = Assert.Single(backend.Heads);
            seen.Add(head.Split("\r\n").Single(l => l.StartsWith("traceparent:", StringComparison.OrdinalIgnoreCase)).Split(':', 2)[1].Trim()[..35]); // version and trace id
        }

        Assert.Equal([Traceparent[..35], Traceparent[..35]], seen); // the same trace either way, whoever opened the connection
    }

    [Fact]
    public void OnlyPlainHttp11WebSocketUpgrades_TakeTheLeanPath()
    {
        static HttpRequestMessage Request(string uri, string? upgrade, Version version)
        {
            var request = new HttpRequestMessage(HttpMethod.Get, uri) { Version = version };
            if (upgrade is not null)
            {
                request.Headers.TryAddWithoutValidation("Upgrade", upgrade);
            }

            return request;
        }

        Assert.True(UpgradeConnector.IsPlainWebSocketUpgrade(Request("http://b/ws", "websocket", HttpVersion.Version11)));
        Assert.True(UpgradeConnector.IsPlainWebSocketUpgrade(Request("http://b/ws", "WebSocket", HttpVersion.Version11)));
        Assert.False(UpgradeConnector.IsPlainWebSocketUpgrade(Request("https://b/ws", "websocket", HttpVersion.Version11))); // TLS: SocketsHttpHandler
        Assert.False(UpgradeConnector.IsPlainWebSocketUpgrade(Request("http://b/ws", "h2c", HttpVersion.Version11)));       // not a WebSocket
        Assert.True(UpgradeConnector.IsPlainWebSocketUpgrade(Request("http://b/ws", "h2c, websocket", HttpVersion.Version11))); // a list of products
        Assert.True(UpgradeConnector.IsPlainWebSocketUpgrade(Request("http://b/ws", " websocket/13 ", HttpVersion.Version11))); // a product version
        Assert.False(UpgradeConnector.IsPlainWebSocketUpgrade(Request("http://b/ws", "websockets", HttpVersion.Version11)));
        Assert.False(UpgradeConnector.IsPlainWebSocketUpgrade(Request("http://b/ws", "", HttpVersion.Version11)));
        Assert.False(UpgradeConnector.IsPlainWebSocketUpgrade(Request("http://b/ws", null, HttpVersion.Version11)));        // an ordinary request
        Assert.False(UpgradeConnector.IsPlainWebSocketUpgrade(Request("http://b/ws", "websocket", HttpVersion.Version20))); // extended CONNECT
    }

    [Theory]
    [InlineData("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n", true)]
    [InlineData("HTTP/1.1 101\r\n", true)]
    [InlineData("HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\nContent-Length: 5\r\n", true)]
    [InlineData("HTTP/2 101 x\r\n", false)]
    [InlineData("HTTP/1.1 1O1 x\r\n", false)]
    [InlineData("HTTP/1.1 101 x\r\n folded: line\r\n", false)]
    [InlineData("HTTP/1.1 101 x\r\nbad name: x\r\n", false)]
    [InlineData("HTTP/1.1 403 x\r\nContent-Length: +5\r\n", false)]
    [InlineData("HTTP/1.1 403 x\r\nContent-Length: 5\r\nContent-Length: 6\r\n", false)]
    [InlineData("HTTP/1.1 101 x\r\nA: b\nSet-Cookie: injected\r\n", false)]
    [InlineData("HTTP/1.1 101 x\r\nA: b\rc\r\n", false)]
    public void ResponseHeads_AreParsedStrictly(string head, bool valid)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "http://b/");
        var parse = () => UpgradeResponseHead.Parse(Encoding.ASCII.GetBytes(head), request);
        if (valid)
        {
            Assert.NotNull(parse());
        }
        else
        {
            Assert.Equal(HttpRequestError.InvalidResponse, Assert.Throws<HttpRequestException>(parse).HttpRequestError);
        }
    }

    [Fact]
    public async Task TurnedOff_UpgradesGoThroughSocketsHttpHandler_AndStillWork()
    {
        Assert.True(new WebSocketProxyOptions().LeanBackendConnector); // on by default
        await using var backend = await RawTcpBackend.StartAsync(async (socket, _) =>
        {
            var head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
            await socket.SendAsync(Encoding.ASCII.GetBytes(head).Concat(WebSocketFrames.TextFrame("early")).ToArray());
        });
        await using var gateway = await GatewayUnderTest.StartAsync(Route(backend.Address), "--Gateway:WebSockets:LeanBackendConnector=false");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        await using var client = await RawWebSocketClient.ConnectAsync(gateway.ProxyAddress, "/ws", key: "dGhlIHNhbXBsZSBub25jZQ==");

        Assert.Equal(101, client.Status);
        Assert.Equal("early", (await client.ReadFrameAsync(timeout.Token))!.Text);
    }

    /// <summary>
    /// Live: an edit rebuilds the clusters' clients with the connector or without it. Before, the setting took effect only
    /// when a cluster's own configuration was edited, while the reload's line said it had applied.
    /// </summary>
    [Fact]
    public async Task TurnedOffAndOnByAnEdit_TheClustersClientIsRebuilt()
    {
        var config = Route(new Uri("http://127.0.0.1:9/"));
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        var proxyState = gateway.Services.GetRequiredService<Yarp.ReverseProxy.IProxyStateLookup>();
        var handlerField = typeof(HttpMessageInvoker).GetField("_handler", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!;
        bool Lean() => proxyState.TryGetCluster("ws", out var cluster) && handlerField.GetValue(cluster.Model.HttpClient) is UpgradeConnector;
        Assert.True(Lean());

        config["Gateway"] = new JsonObject { ["WebSockets"] = new JsonObject { ["LeanBackendConnector"] = false } };
        gateway.WriteConfig(config);
        Assert.True(await Eventually.TrueAsync(() => !Lean(), TimeSpan.FromSeconds(10)), "the cluster kept the lean connector");

        config["Gateway"] = new JsonObject { ["WebSockets"] = new JsonObject { ["LeanBackendConnector"] = true } };
        gateway.WriteConfig(config);
        Assert.True(await Eventually.TrueAsync(Lean, TimeSpan.FromSeconds(10)), "the cluster did not get the lean connector back");
    }

    internal static JsonObject Route(Uri backend) => new()
    {
        ["ReverseProxy"] = new JsonObject
        {
            ["Routes"] = new JsonObject { ["ws"] = new JsonObject { ["ClusterId"] = "ws", ["Match"] = new JsonObject { ["Path"] = "/{**rest}" } } },
            ["Clusters"] = new JsonObject { ["ws"] = new JsonObject { ["Destinations"] = new JsonObject { ["d"] = new JsonObject { ["Address"] = backend.ToString() } } } },
        },
    };
}
