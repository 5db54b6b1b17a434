using System.Net;
using System.Net.WebSockets;
using System.Text;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;
using YarpGateway.Endpoints;
using YarpGateway.Tests.Functional;
using YarpGateway.Tests.WebSockets;

namespace YarpGateway.Tests.Endpoints;

/// <summary>Whether requests run on the socket threads (Kestrel's UnsafePreferInlineScheduling), and that the gateway works either way.</summary>
public class SocketTransportSetupTests
{
    [Theory]
    [InlineData(null, 1, true, true)]   // one CPU, inline completions: the measured win
    [InlineData(null, 2, true, false)]  // more CPUs: work could not move between socket threads
    [InlineData(null, 1, false, false)] // the operator turned inline completions off: all of it goes back
    [InlineData(true, 4, false, true)]  // the operator's setting always wins
    [InlineData(false, 1, true, false)]
    public void PreferInlineScheduling_FollowsTheOperatorThenTheCpuCount(bool? configured, int processors, bool inlineCompletions, bool expected)
        => Assert.Equal(expected, SocketTransportSetup.PreferInlineScheduling(configured, processors, inlineCompletions));

    [Fact]
    public async Task InlineSchedulingOn_ProxiesHttp1Http2AndWebSockets()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var echo = await EchoWebSocketBackend.StartAsync();
        var config = ProxyConfigJson.Config(
            ("api", "/api/{**rest}", "c1"), ("c1", "WeightedRoundRobin", [(backend, "1")]));
        config["ReverseProxy"]!["Routes"]!["ws"] = new System.Text.Json.Nodes.JsonObject { ["ClusterId"] = "ws", ["Match"] = new System.Text.Json.Nodes.JsonObject { ["Path"] = "/ws" } };
        config["ReverseProxy"]!["Clusters"]!["ws"] = new System.Text.Json.Nodes.JsonObject
        {
            ["Destinations"] = new System.Text.Json.Nodes.JsonObject { ["d"] = new System.Text.Json.Nodes.JsonObject { ["Address"] = echo.Address.ToString() } },
        };
        await using var gateway = await GatewayUnderTest.StartAsync(config, "--Gateway:Transport:InlineScheduling=true");

        Assert.True(gateway.Services.GetRequiredService<IOptions<SocketTransportOptions>>().Value.UnsafePreferInlineScheduling);
        Assert.Contains(gateway.Logs.Lines, line => line.Contains("Requests are processed on the socket threads", StringComparison.Ordinal));

        using var proxy = gateway.CreateProxyClient();
        var requests = Enumerable.Range(0, 200).Select(async i =>
        {
            using var content = new StringContent($"body {i}");
            using var response = await proxy.PostAsync($"/api/{i}", content);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("a", await response.Content.ReadAsStringAsync());
        });
        await Task.WhenAll(requests);
        Assert.Equal(200, backend.Bodies.Count);

        using var http2 = gateway.CreateHttp2ProxyClient();
        using (var response = await http2.GetAsync("/api/h2"))
        {
            Assert.Equal(HttpVersion.Version20, response.Version);
            Assert.Equal("a", await response.Content.ReadAsStringAsync());
        }

        using var socket = new ClientWebSocket();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await socket.ConnectAsync(new UriBuilder(gateway.ProxyAddress) { Scheme = "ws", Path = "/ws" }.Uri, timeout.Token);
        await socket.SendAsync(Encoding.UTF8.GetBytes("hello"), WebSocketMessageType.Text, endOfMessage: true, timeout.Token);
        var buffer = new byte[64];
        var received = await socket.ReceiveAsync(buffer, timeout.Token);
        Assert.Equal("hello", Encoding.UTF8.GetString(buffer, 0, received.Count));
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", timeout.Token);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
    }

    [Fact]
    public async Task InlineSchedulingOn_Http2SendsThroughTheBatchingPipe_ManyLargeStreamsArriveIntact_AndTheLastGoAwayToo()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.Config(("api", "/{**rest}", "c1"), ("c1", "WeightedRoundRobin", [(backend, "1")]));
        await using var gateway = await GatewayUnderTest.StartAsync(config, "--Gateway:Transport:InlineScheduling=true");

        // 20 streams at once on one connection, each response several times the batching pipe's 64 KiB
        // (more load than this in the shared test process stalled other tests' sockets: with inline
        // scheduling the gateway works on the socket engine's threads, which every test shares).
        const int Length = 200_000;
        var expected = TestBackend.Alphabet(Length);
        using (var http2 = gateway.CreateHttp2ProxyClient())
        {
            var bodies = await Task.WhenAll(Enumerable.Range(0, 20).Select(async _ =>
            {
                using var response = await http2.GetAsync($"/bytes/{Length}");
                Assert.Equal(HttpVersion.Version20, response.Version);
                return await response.Content.ReadAsByteArrayAsync();
            })).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.All(bodies, body => Assert.True(body.AsSpan().SequenceEqual(expected), $"a body of {body.Length} bytes differs"));
        }

        Assert.Equal(1, gateway.Services.GetRequiredService<TrafficCounters>().AcceptedConnections);

        // The frames Kestrel writes as the connection ends (its GOAWAY) are sent before the socket closes.
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        await socket.SendAsync((byte[])[.. Hostile.Http2Frames.Preface, .. Hostile.Http2Frames.EmptySettings(), .. Hostile.Http2Frames.Request(1, path: "/bytes/10")], System.Net.Sockets.SocketFlags.None);
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        // Until stream 1 has ended (Kestrel may send the body and END_STREAM in separate DATA frames).
        while ((await Hostile.Http2Frames.ReadAsync(socket, bound.Token)) is var frame
            && !(frame.StreamId == 1 && frame.Type is Hostile.Http2Frames.Data or Hostile.Http2Frames.Headers && (frame.Flags & Hostile.Http2Frames.EndStream) != 0))
        {
        }

        var stopping = gateway.StopAsync();
        byte? lastType = null;
        try
        {
            while (true)
            {
                lastType = (await Hostile.Http2Frames.ReadAsync(socket, bound.Token)).Type;
            }
        }
        catch (EndOfStreamException)
        {
            // closed by the gateway, after what it sent
        }

        Assert.Equal(Hostile.Http2Frames.GoAway, lastType);
        await stopping.WaitAsync(TimeSpan.FromSeconds(20));
    }

    [Fact]
    public async Task MaxWriteBufferSize_SetsKestrelsWriteBufferPerConnection_16KiBByDefault()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.Config(("api", "/api/{**rest}", "c1"), ("c1", "WeightedRoundRobin", [(backend, "1")]));
        await using (var gateway = await GatewayUnderTest.StartAsync(config))
        {
            Assert.Equal(16 * 1024, gateway.Services.GetRequiredService<IOptions<SocketTransportOptions>>().Value.MaxWriteBufferSize);
            Assert.NotEqual(new SocketTransportOptions().MaxWriteBufferSize, 16 * 1024); // smaller than Kestrel's own
        }

        await using (var gateway = await GatewayUnderTest.StartAsync(config, "--Gateway:Transport:MaxWriteBufferSize=65536"))
        {
            Assert.Equal(65536, gateway.Services.GetRequiredService<IOptions<SocketTransportOptions>>().Value.MaxWriteBufferSize);
            using var proxy = gateway.CreateProxyClient();
            Assert.Equal("a", await proxy.GetStringAsync("/api/x"));
        }
    }

    [Theory]
    [InlineData(4095, false)]
    [InlineData(4096, true)]
    [InlineData(16 * 1024 * 1024, true)]
    [InlineData(16 * 1024 * 1024 + 1, false)]
    public void MaxWriteBufferSize_OutOfRange_IsAStartupError(int size, bool valid)
    {
        var result = new TransportOptionsValidator().Validate(null, new TransportOptions { MaxWriteBufferSize = size });
        Assert.Equal(valid, result.Succeeded);
        if (!valid)
        {
            Assert.Contains("Gateway:Transport:MaxWriteBufferSize must be from 4096", result.FailureMessage, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task MaxReadBufferSize_64KiBByDefault_LargeHeadersAndBodiesStillGoThrough()
    {
        // What Kestrel reads ahead of the application is what an upload pins while its backend does
        // not read: 64 KiB, not Kestrel's 1 MiB. The request line and headers must still fit in it
        // (Kestrel holds them until the last one), and a body larger than it must arrive whole.
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.Config(("api", "/api/{**rest}", "c1"), ("c1", "WeightedRoundRobin", [(backend, "1")]));
        await using (var gateway = await GatewayUnderTest.StartAsync(config))
        {
            Assert.Equal(64 * 1024, gateway.Services.GetRequiredService<IOptions<SocketTransportOptions>>().Value.MaxReadBufferSize);
            Assert.Equal(1024 * 1024, new SocketTransportOptions().MaxReadBufferSize); // Kestrel's own

            using var proxy = gateway.CreateProxyClient();
            var body = new string('b', 2 * 1024 * 1024 + 17);
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/upload") { Content = new StringContent(body) };
            request.Headers.Add("X-Large", new string('h', 30 * 1024)); // under Kestrel's 32 KiB of headers
            using var response = await proxy.SendAsync(request);

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(body.Length, Assert.Single(backend.Bodies).Length);
            Assert.Equal(30 * 1024, Assert.Single(backend.RequestHeaders)["X-Large"].Length);
        }

        await using (var gateway = await GatewayUnderTest.StartAsync(config, "--Gateway:Transport:MaxReadBufferSize=1048576"))
        {
            Assert.Equal(1024 * 1024, gateway.Services.GetRequiredService<IOptions<SocketTransportOptions>>().Value.MaxReadBufferSize);
        }
    }

    [Theory]
    [InlineData(64 * 1024 - 1, false)]
    [InlineData(64 * 1024, true)]
    [InlineData(16 * 1024 * 1024, true)]
    [InlineData(16 * 1024 * 1024 + 1, false)]
    public void MaxReadBufferSize_OutOfRange_IsAStartupError(int size, bool valid)
    {
        var result = new TransportOptionsValidator().Validate(null, new TransportOptions { MaxReadBufferSize = size });
        Assert.Equal(valid, result.Succeeded);
        if (!valid)
        {
            Assert.Contains("Gateway:Transport:MaxReadBufferSize must be from 65536", result.FailureMessage, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Backlog_IsLongerThanKestrelsByDefault_AndConfigurable()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.Config(("api", "/api/{**rest}", "c1"), ("c1", "WeightedRoundRobin", [(backend, "1")]));
        await using (var gateway = await GatewayUnderTest.StartAsync(config))
        {
            Assert.Equal(512, new SocketTransportOptions().Backlog); // Kestrel's, which a storm of 5,000 overflowed by about 1,600 handshakes
            Assert.Equal(4096, gateway.Services.GetRequiredService<IOptions<SocketTransportOptions>>().Value.Backlog);
        }

        await using (var gateway = await GatewayUnderTest.StartAsync(config, "--Gateway:Transport:Backlog=100"))
        {
            Assert.Equal(100, gateway.Services.GetRequiredService<IOptions<SocketTransportOptions>>().Value.Backlog);
            using var proxy = gateway.CreateProxyClient();
            Assert.Equal("a", await proxy.GetStringAsync("/api/x"));
        }
    }

    [Fact]
    public void OutOfRangeTransportSettings_AreStartupErrors_AllListed()
    {
        Assert.True(new TransportOptionsValidator().Validate(null, new TransportOptions { Backlog = 1 }).Succeeded);
        Assert.True(new TransportOptionsValidator().Validate(null, new TransportOptions { Backlog = 65535 }).Succeeded);
        var result = new TransportOptionsValidator().Validate(null, new TransportOptions { Backlog = 0, MaxWriteBufferSize = 1 });
        Assert.False(result.Succeeded);
        Assert.Contains("Gateway:Transport:Backlog must be from 1 to 65535; got 0.", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("Gateway:Transport:MaxWriteBufferSize must be from 4096", result.FailureMessage, StringComparison.Ordinal);
        Assert.False(new TransportOptionsValidator().Validate(null, new TransportOptions { Backlog = 65536 }).Succeeded);
    }
}
