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
    public async Task DropMessages_DropsAFragmentedMessageWhole_ControlFramesStillPass()
    {
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
        var relay = Assert.Single(gateway.Services.GetRequiredService<WebSocketRelays>().Open);

        // The backend's permessage-deflate offer was removed: dropped messages must not break a compression context.
        Assert.Equal(string.Empty, server.Extensions);

        // Fill the client's buffer with "filler" messages while the client reads nothing, until a
        // whole batch is dropped: the socket and Kestrel's buffer towards the client are full too.
        var filler = WebSocketFrames.TextFrame(new string('f', 200));
        var fillers = 0;
        long passedBefore;
        do
        {
            passedBefore = relay.PassedMessages;
            for (var i = 0; i < 100; i++)
            {
                await server.SendAsync(filler, timeout.Token);
            }

            fillers += 100;
            Assert.True(await Eventually.TrueAsync(() => relay.PassedMessages + relay.DroppedMessages == fillers, Bound), "the gateway did not take the fillers");
        }
        while (relay.PassedMessages != passedBefore);

        // Over the cap (the first fragment is bigger than the whole buffer, which is not empty):
        // a message in three fragments with a ping between them, then a second ping.
        await server.SendAsync(WebSocketFrames.TextFrame("FRAG-1 " + new string('x', 2000), fin: false), timeout.Token);
        await server.SendAsync(WebSocketFrames.Frame(WebSocketFrames.Ping, "ping-1"u8), timeout.Token);
        await server.SendAsync(WebSocketFrames.Frame(WebSocketFrames.Continuation, "FRAG-2 "u8, fin: false), timeout.Token);
        await server.SendAsync(WebSocketFrames.Frame(WebSocketFrames.Continuation, "FRAG-3"u8, fin: true), timeout.Token);
        await server.SendAsync(WebSocketFrames.Frame(WebSocketFrames.Ping, "ping-2"u8), timeout.Token);

        // Now the client reads: fillers, both pings, and no fragment of the dropped message.
        var seen = new List<ReceivedFrame>();
        while (!seen.Any(f => f.Opcode == WebSocketFrames.Ping && f.Text == "ping-2"))
        {
            seen.Add(await client.ReadFrameAsync(timeout.Token) ?? throw new EndOfStreamException());
        }

        // Room again: the next message passes whole.
        await server.SendAsync(WebSocketFrames.TextFrame("after"), timeout.Token);
        ReceivedFrame next;
        do
        {
            next = await client.ReadFrameAsync(timeout.Token) ?? throw new EndOfStreamException();
        }
        while (next.Opcode == WebSocketFrames.Text && next.Text.StartsWith('f'));

        Assert.DoesNotContain(seen, f => f.Text.Contains("FRAG", StringComparison.Ordinal));
        Assert.Equal(["ping-1", "ping-2"], seen.Where(f => f.Opcode == WebSocketFrames.Ping).Select(f => f.Text));
        Assert.All(seen.Where(f => f.Opcode == WebSocketFrames.Text), f => Assert.Equal(new string('f', 200), f.Text));
        Assert.Equal("after", next.Text);
        var delivered = seen.Count(f => f.Opcode == WebSocketFrames.Text);
        Assert.Equal(fillers - delivered + 1, relay.DroppedMessages); // the dropped fillers and the fragmented message, counted once
        Assert.True(relay.PeakBufferedBytes <= 1024, $"peak {relay.PeakBufferedBytes}");
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
            "--Gateway:Admission:Connections:MaxFirstRequestConnections=2", "--Gateway:Admission:Connections:MaxWait=00:00:05");
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
        catch (IOException)
        {
            return null; // aborted: also an end
        }
    }

    internal static async Task AssertNothingOpenAsync(GatewayUnderTest gateway)
    {
        var counters = gateway.Services.GetRequiredService<WebSocketCounters>();
        var traffic = gateway.Services.GetRequiredService<YarpGateway.Telemetry.TrafficCounters>();
        Assert.True(
            await Eventually.TrueAsync(() => counters.Open == 0 && counters.BufferedBytes == 0 && traffic.UpgradedConnections == 0, TimeSpan.FromSeconds(10)),
            $"open relays {counters.Open}, buffered {counters.BufferedBytes}, upgraded {traffic.UpgradedConnections}");
    }
}
