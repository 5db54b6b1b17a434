using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using YarpGateway.Tests.Functional;
using YarpGateway.WebSockets;

namespace YarpGateway.Tests.WebSockets;

/// <summary>Frame-level behaviour of the relay and the handshake checks, with raw frames on both sides.</summary>
public class WebSocketRelayTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task DropMessages_DropsFragmentedMessagesWhole_ControlFramesStillPass()
    {
        const int Messages = 200;
        await using var backend = await ScriptedWebSocketBackend.StartAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(SlowClientTests.Route(backend, new JsonObject
        {
            ["WebSocketSlowClientPolicy"] = "DropMessages",
            ["WebSocketOutboundBufferBytes"] = "1024",
            ["WebSocketMaxDroppedMessages"] = "0",
            ["WebSocketMaxDroppedBytes"] = "0",
        }));
        using var timeout = new CancellationTokenSource(Bound);
        await using var client = await RawWebSocketClient.ConnectAsync(gateway.ProxyAddress, "/frames");
        var server = await backend.AcceptAsync();
        var relay = await OpenRelay.SingleAsync(gateway.Services.GetRequiredService<WebSocketRelays>());

        // The backend's permessage-deflate offer was removed: dropped messages must not break a compression context.
        Assert.Equal(string.Empty, server.Extensions);

        // Messages in three fragments, the first bigger than the whole buffer (so it is taken only
        // when the buffer is empty), with a ping between the first two fragments; a last ping ends it.
        var sending = Task.Run(async () =>
        {
            for (var i = 0; i < Messages; i++)
            {
                await server.SendAsync(WebSocketFrames.TextFrame($"M{i}:1:" + new string('x', 2000), fin: false), timeout.Token);
                await server.SendAsync(WebSocketFrames.Frame(WebSocketFrames.Ping, System.Text.Encoding.UTF8.GetBytes($"p{i}")), timeout.Token);
                await server.SendAsync(WebSocketFrames.Frame(WebSocketFrames.Continuation, System.Text.Encoding.UTF8.GetBytes($"M{i}:2:"), fin: false), timeout.Token);
                await server.SendAsync(WebSocketFrames.Frame(WebSocketFrames.Continuation, System.Text.Encoding.UTF8.GetBytes($"M{i}:3"), fin: true), timeout.Token);
            }

            await server.SendAsync(WebSocketFrames.Frame(WebSocketFrames.Ping, "end"u8), timeout.Token);
        }, CancellationToken.None);

        // The client reads nothing until messages are being dropped (or the relay is stuck, or all was
        // sent: how much the sockets absorb first varies), then everything. Which messages are dropped
        // depends on that; that a message is never cut in two and a ping never lost does not.
        // (WebSocketRelayPolicyTests pins the exact drops down with a client stream it controls.)
        Assert.True(await Eventually.TrueAsync(() => relay.DroppedMessages > 0 || sending.IsCompleted || (relay.WriteBlocked && relay.BufferedBytes > 0), Bound), "the relay made no progress");
        var seen = new List<ReceivedFrame>();
        while (!seen.Any(f => f.Opcode == WebSocketFrames.Ping && f.Text == "end"))
        {
            seen.Add(await client.ReadFrameAsync(timeout.Token) ?? throw new EndOfStreamException());
        }

        await sending;

        // Every ping arrived, in order.
        Assert.Equal(Enumerable.Range(0, Messages).Select(i => $"p{i}").Append("end"), seen.Where(f => f.Opcode == WebSocketFrames.Ping).Select(f => f.Text));

        // Each message arrived whole (its three fragments in order) or not at all.
        var data = seen.Where(f => f.Opcode is WebSocketFrames.Text or WebSocketFrames.Continuation).ToList();
        Assert.Equal(0, data.Count % 3);
        var delivered = 0;
        for (var k = 0; k < data.Count; k += 3)
        {
            var id = data[k].Text.Split(':')[0];
            Assert.True(data[k].Opcode == WebSocketFrames.Text && !data[k].Fin && data[k].Text.StartsWith(id + ":1:", StringComparison.Ordinal), $"frame {k}: {data[k].Text[..Math.Min(10, data[k].Text.Length)]}");
            Assert.True(data[k + 1].Opcode == WebSocketFrames.Continuation && !data[k + 1].Fin && data[k + 1].Text == id + ":2:", $"frame {k + 1}: {data[k + 1].Text}");
            Assert.True(data[k + 2].Opcode == WebSocketFrames.Continuation && data[k + 2].Fin && data[k + 2].Text == id + ":3", $"frame {k + 2}: {data[k + 2].Text}");
            delivered++;
        }

        Assert.True(delivered > 0, "the first message (buffer empty) must pass");
        Assert.Equal(Messages, delivered + relay.DroppedMessages);
        Assert.True(relay.PeakBufferedBytes <= 1024, $"peak {relay.PeakBufferedBytes}");
        Assert.Equal(relay.DroppedMessages, gateway.Counter("gateway.websocket.dropped.messages|route=ws"));
        server.Finish();
    }

    [Theory]
    [InlineData("DropMessages")]
    [InlineData("Backpressure")]
    public async Task MalformedBackendFrame_ClosesTheClientWith1002_AndTheBackendSide(string policy)
    {
        await using var backend = await ScriptedWebSocketBackend.StartAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(SlowClientTests.Route(backend, new JsonObject { ["WebSocketSlowClientPolicy"] = policy }), "--Gateway:WebSockets:CloseTimeout=00:00:01");
        using var timeout = new CancellationTokenSource(Bound);
        await using var client = await RawWebSocketClient.ConnectAsync(gateway.ProxyAddress, "/bad");
        var server = await backend.AcceptAsync();

        await server.SendAsync(WebSocketFrames.TextFrame("good"), timeout.Token);
        await server.SendAsync([0x83, 0x00], timeout.Token); // opcode 0x3 is reserved
        await server.SendAsync(WebSocketFrames.TextFrame("never"), timeout.Token);

        var first = await client.ReadFrameAsync(timeout.Token);
        var close = await client.ReadFrameAsync(timeout.Token);
        Assert.Equal("good", first!.Text);
        Assert.Equal(WebSocketFrames.Close, close!.Opcode);
        Assert.Equal(CloseFrame.ProtocolError, close.CloseCode);
        Assert.Contains("malformed frame from the backend", close.Text, StringComparison.Ordinal);

        // The client answers; its close reaches the backend, and then the backend's connection ends.
        await client.SendAsync(WebSocketFrames.CloseFrame(1002, masked: true), timeout.Token);
        var atBackend = await server.ReadFrameAsync(timeout.Token);
        Assert.Equal(CloseFrame.ProtocolError, atBackend!.CloseCode);
        Assert.Null(await ReadToEndAsync(server, timeout.Token));
        Assert.Equal(1, gateway.Counter("gateway.websocket.evictions|route=ws|reason=protocol_error"));
        server.Finish();
        await AssertNothingOpenAsync(gateway);
    }

    [Theory]
    [InlineData("Backpressure")]
    [InlineData("DropMessages")]
    public async Task BackendConnectionEndsWithoutAClose_TheClientGets1014_NotADroppedConnection(string policy)
    {
        await using var backend = await ScriptedWebSocketBackend.StartAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(SlowClientTests.Route(backend, new JsonObject { ["WebSocketSlowClientPolicy"] = policy }));
        using var timeout = new CancellationTokenSource(Bound);
        await using var client = await RawWebSocketClient.ConnectAsync(gateway.ProxyAddress, "/crash");
        var server = await backend.AcceptAsync();

        // The backend sends a message, then its connection ends with no close frame (a crash, a kill).
        await server.SendAsync(WebSocketFrames.TextFrame("last words"), timeout.Token);
        Assert.Equal("last words", (await client.ReadFrameAsync(timeout.Token))!.Text);
        server.Finish();

        var close = await client.ReadFrameAsync(timeout.Token);
        Assert.NotNull(close);
        Assert.Equal(WebSocketFrames.Close, close.Opcode);
        Assert.Equal(CloseFrame.BadGateway, close.CloseCode);
        Assert.Contains("backend", close.Text, StringComparison.Ordinal);
        Assert.True(await Eventually.TrueAsync(() => gateway.Counter("gateway.websocket.evictions|route=ws|reason=backend_lost") == 1, TimeSpan.FromSeconds(5)),
            gateway.DescribeCounters("gateway.websocket.evictions"));
        await AssertNothingOpenAsync(gateway);
    }

    [Fact]
    public async Task BackendConnectionsResetMidStream_CountTowardsOutlierEjection_OnceEachWhenItEnds()
    {
        // Each WebSocket's backend connection is reset (RST) after a message: a failure of the destination. The relay
        // carries the connection after YARP's handshake has returned, so the handshake's success is not reported then:
        // one report per WebSocket, at its end, as when YARP's passive health middleware waited for its copy. (Reported
        // twice, each success would reset the run of failures; not reported at the end, there would be none.)
        await using var backend = await RawTcpBackend.StartAsync(async (socket, cancellationToken) =>
        {
            var head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
            await socket.SendAsync(Encoding.ASCII.GetBytes(head).Concat(WebSocketFrames.TextFrame("hello")).ToArray(), cancellationToken);
            var buffer = new byte[256];
            _ = await socket.ReceiveAsync(buffer, cancellationToken); // the client's "bye"
            socket.LingerState = new System.Net.Sockets.LingerOption(true, 0);
            socket.Close(); // a reset, not an end
        });
        var config = UpgradeConnectorTests.Route(backend.Address);
        config["ReverseProxy"]!["Clusters"]!["ws"]!["Metadata"] = new JsonObject { ["OutlierEjection.ConsecutiveFailures"] = "3" };
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var timeout = new CancellationTokenSource(Bound);

        for (var i = 1; i <= 3; i++)
        {
            await using var client = await RawWebSocketClient.ConnectAsync(gateway.ProxyAddress, "/ws", key: "dGhlIHNhbXBsZSBub25jZQ==");
            Assert.Equal("hello", (await client.ReadFrameAsync(timeout.Token))!.Text);
            await client.SendAsync(WebSocketFrames.TextFrame("bye", masked: true), timeout.Token);
            var close = await client.ReadFrameAsync(timeout.Token); // sent after the report
            Assert.Equal(CloseFrame.BadGateway, close!.CloseCode);

            // One destination: the ejection is skipped (at most half may be ejected), and counted as skipped.
            Assert.Equal(i == 3 ? 1 : 0, gateway.CounterSum("gateway.outlier.ejections_skipped|") + gateway.CounterSum("gateway.outlier.ejections|"));
        }

        Assert.True(
            await Eventually.TrueAsync(() => gateway.Counter("gateway.proxy.errors|cluster=ws|error=upgrade_response_destination") == 3, TimeSpan.FromSeconds(10)),
            gateway.DescribeCounters("gateway.proxy.errors"));
    }

    [Fact]
    public async Task NoBytesEitherWayForTheActivityTimeout_TheClientGets1001_AndItsCloseReachesTheBackend()
    {
        await using var backend = await ScriptedWebSocketBackend.StartAsync();
        var config = SlowClientTests.Route(backend, new JsonObject());
        config["ReverseProxy"]!["Clusters"]!["ws"]!["HttpRequest"] = new JsonObject { ["ActivityTimeout"] = "00:00:01" };
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var timeout = new CancellationTokenSource(Bound);
        await using var client = await RawWebSocketClient.ConnectAsync(gateway.ProxyAddress, "/quiet");
        var server = await backend.AcceptAsync();
        var opened = System.Diagnostics.Stopwatch.GetTimestamp();

        // Nothing is sent either way: the next frame the client gets is the gateway's close.
        var close = await client.ReadFrameAsync(timeout.Token);
        Assert.True(System.Diagnostics.Stopwatch.GetElapsedTime(opened) >= TimeSpan.FromSeconds(0.9), "closed before the activity timeout");
        Assert.Equal(WebSocketFrames.Close, close!.Opcode);
        Assert.Equal(CloseFrame.GoingAway, close.CloseCode);
        Assert.Contains("ActivityTimeout", close.Text, StringComparison.Ordinal);
        Assert.Equal(1, gateway.Counter("gateway.websocket.evictions|route=ws|reason=idle"));

        // The client answers; its close reaches the backend, whose end ends the WebSocket.
        await client.SendAsync(WebSocketFrames.CloseFrame(1001, masked: true), timeout.Token);
        Assert.Equal(CloseFrame.GoingAway, (await server.ReadFrameAsync(timeout.Token))!.CloseCode);
        server.Finish();
        await AssertNothingOpenAsync(gateway);
        Assert.Equal(0, gateway.CounterSum("gateway.proxy.errors|"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ClientConnectionEndsWithoutAClose_IsNotCountedAsTheBackendsLoss(bool reset)
    {
        await using var backend = await ScriptedWebSocketBackend.StartAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(SlowClientTests.Route(backend, new JsonObject()));
        using var timeout = new CancellationTokenSource(Bound);
        var client = await RawWebSocketClient.ConnectAsync(gateway.ProxyAddress, "/leaves");
        var server = await backend.AcceptAsync();
        await server.SendAsync(WebSocketFrames.TextFrame("hello"), timeout.Token);
        Assert.Equal("hello", (await client.ReadFrameAsync(timeout.Token))!.Text);

        // The client goes away with no close frame (closed, or reset): the backend's side ends, and nobody blames the backend.
        if (reset)
        {
            client.Reset();
        }

        await client.DisposeAsync();
        await AssertTheBackendsSideEnded_NothingBlamedAsync(gateway, server, timeout.Token);
    }

    /// <summary>
    /// The same over HTTP/2 (RFC 8441): the client's stream reset (a WebSocket aborted), or its whole connection closed,
    /// with no close frame. The backend's side ends at once, and nothing is counted against the backend.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Http2ClientStreamEndsWithoutAClose_EndsTheBackendSide_NotCountedAsTheBackendsLoss(bool wholeConnection)
    {
        await using var backend = await ScriptedWebSocketBackend.StartAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(SlowClientTests.Route(backend, new JsonObject()));
        using var timeout = new CancellationTokenSource(Bound);
        System.Net.Sockets.Socket? connection = null;
        using var invoker = new HttpMessageInvoker(new SocketsHttpHandler
        {
            ConnectCallback = async (context, cancellationToken) =>
            {
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                connection = socket;
                return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
            },
        });
        using var client = new System.Net.WebSockets.ClientWebSocket();
        client.Options.HttpVersion = HttpVersion.Version20;
        client.Options.HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        client.Options.KeepAliveInterval = TimeSpan.Zero;
        await client.ConnectAsync(new UriBuilder(gateway.ProxyAddress) { Scheme = "ws", Path = "/leaves" }.Uri, invoker, timeout.Token);
        var server = await backend.AcceptAsync();
        await server.SendAsync(WebSocketFrames.TextFrame("hello"), timeout.Token);
        var buffer = new byte[64];
        var received = await client.ReceiveAsync(buffer, timeout.Token);
        Assert.Equal("hello", Encoding.UTF8.GetString(buffer, 0, received.Count));

        if (wholeConnection)
        {
            connection!.Close(); // the HTTP/2 connection closed under the open stream, no GOAWAY
        }
        else
        {
            client.Abort(); // RST_STREAM (CANCEL) for the WebSocket's stream; the connection stays
        }

        await AssertTheBackendsSideEnded_NothingBlamedAsync(gateway, server, timeout.Token);
    }

    /// <summary>After a client left with no close frame: the backend's side ended, nothing stays open, no eviction, no destination error.</summary>
    private static async Task AssertTheBackendsSideEnded_NothingBlamedAsync(GatewayUnderTest gateway, BackendSocket server, CancellationToken cancellationToken)
    {
        Assert.Null(await ReadToEndAsync(server, cancellationToken));
        server.Finish();
        await AssertNothingOpenAsync(gateway);
        Assert.Equal(0, gateway.CounterSum("gateway.websocket.evictions"));
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("[WebSocketEvicted]", StringComparison.Ordinal) || l.Contains("_destination", StringComparison.Ordinal));
    }

    [Fact]
    public async Task PingPongAndCleanClose_PassThrough()
    {
        await using var backend = await EchoWebSocketBackend.StartAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(EchoRoute(backend));
        using var timeout = new CancellationTokenSource(Bound);
        await using var client = await RawWebSocketClient.ConnectAsync(gateway.ProxyAddress, "/echo");

        await client.SendAsync(WebSocketFrames.Frame(WebSocketFrames.Ping, "are you there"u8, masked: true), timeout.Token);
        var pong = await client.ReadFrameAsync(timeout.Token);
        Assert.Equal(WebSocketFrames.Pong, pong!.Opcode);
        Assert.Equal("are you there", pong.Text);

        await client.SendAsync(WebSocketFrames.TextFrame("hi", masked: true), timeout.Token);
        Assert.Equal("hi", (await client.ReadFrameAsync(timeout.Token))!.Text);

        await client.SendAsync(WebSocketFrames.CloseFrame(1000, masked: true), timeout.Token);
        var close = await client.ReadFrameAsync(timeout.Token);
        Assert.Equal(1000, close!.CloseCode);
        Assert.Null(await client.ReadFrameAsync(timeout.Token));
        await AssertNothingOpenAsync(gateway);

        var counters = gateway.Services.GetRequiredService<WebSocketCounters>();
        Assert.Equal(1, counters.UpstreamMessages); // "hi": pings and closes are control frames, not messages
        Assert.True(counters.DownstreamMessages >= 1);
    }

    [Fact]
    public async Task OpenWebSockets_DoNotHoldFirstRequestSlots()
    {
        await using var backend = await EchoWebSocketBackend.StartAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(EchoRoute(backend),
            "--Gateway:Admission:Connections:MaxFirstRequestConnections=2", "--Gateway:Admission:Connections:MaxWait=00:00:05",
            "--Gateway:Admission:Connections:MaxFirstRequestTime=00:05:00"); // only the 101 may free the slots
        using var timeout = new CancellationTokenSource(Bound);
        var clients = new List<RawWebSocketClient>();
        try
        {
            // Twice the cap: an upgraded connection has finished its first request.
            for (var i = 0; i < 4; i++)
            {
                var client = await RawWebSocketClient.ConnectAsync(gateway.ProxyAddress, "/echo");
                clients.Add(client);
                Assert.Equal(101, client.Status);
            }

            var admission = gateway.Services.GetRequiredService<YarpGateway.Admission.ConnectionAdmission>();
            Assert.True(await Eventually.TrueAsync(() => admission.FirstRequestSlotsInUse == 0, TimeSpan.FromSeconds(5)), $"{admission.FirstRequestSlotsInUse} slots held");
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task BadHandshakes_GetClearStatusCodes_AndNothingIsLeftOpen()
    {
        await using var backend = await ScriptedWebSocketBackend.StartAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(SlowClientTests.Route(backend, new JsonObject { ["WebSocketOnly"] = "true" }));
        using var timeout = new CancellationTokenSource(Bound);

        await using (var badKey = await RawWebSocketClient.ConnectAsync(gateway.ProxyAddress, "/x", key: "not-a-key"))
        {
            Assert.Equal(400, badKey.Status);
            Assert.Contains("Sec-WebSocket-Key", await badKey.ReadBodyAsync(timeout.Token), StringComparison.Ordinal);
        }

        await using (var badVersion = await RawWebSocketClient.ConnectAsync(gateway.ProxyAddress, "/x", version: "8"))
        {
            Assert.Equal(426, badVersion.Status);
            Assert.Contains("Sec-WebSocket-Version: 13", badVersion.ResponseHeaders, StringComparison.OrdinalIgnoreCase);
        }

        await using (var refused = await RawWebSocketClient.ConnectAsync(gateway.ProxyAddress, "/refuse"))
        {
            Assert.Equal(403, refused.Status);
        }

        using var http = gateway.CreateProxyClient();
        using var plain = await http.GetAsync(new Uri("/plain", UriKind.Relative), timeout.Token);
        Assert.Equal(HttpStatusCode.UpgradeRequired, plain.StatusCode);
        Assert.Contains("only WebSocket", await plain.Content.ReadAsStringAsync(timeout.Token), StringComparison.Ordinal);

        await AssertNothingOpenAsync(gateway);
    }

    private static JsonObject EchoRoute(EchoWebSocketBackend backend) => new()
    {
        ["ReverseProxy"] = new JsonObject
        {
            ["Routes"] = new JsonObject { ["ws"] = new JsonObject { ["ClusterId"] = "ws", ["Match"] = new JsonObject { ["Path"] = "/{**rest}" } } },
            ["Clusters"] = new JsonObject { ["ws"] = new JsonObject { ["Destinations"] = new JsonObject { ["d"] = new JsonObject { ["Address"] = backend.Address.ToString() } } } },
        },
    };

    private static async Task<ReceivedFrame?> ReadToEndAsync(BackendSocket server, CancellationToken cancellationToken)
    {
        try
        {
            return await server.ReadFrameAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            return null; // aborted: also an end (Kestrel may have torn the backend's request down already)
        }
    }

    internal static async Task AssertNothingOpenAsync(GatewayUnderTest gateway)
    {
        var counters = gateway.Services.GetRequiredService<WebSocketCounters>();
        var traffic = gateway.Services.GetRequiredService<YarpGateway.Endpoints.TrafficCounters>();
        Assert.True(
            await Eventually.TrueAsync(() => counters.Open == 0 && counters.BufferedBytes == 0 && traffic.UpgradedConnections == 0, TimeSpan.FromSeconds(10)),
            $"open relays {counters.Open}, buffered {counters.BufferedBytes}, upgraded {traffic.UpgradedConnections}");
    }
}
