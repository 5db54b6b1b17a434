using System.Net;
using System.Text.Json.Nodes;

namespace YarpGateway.Tests.Functional;

public class DrainTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task DrainingOnReload_InFlightRequestFinishes_NewRequestsGoElsewhere()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (a, "1"), (b, "0")));
        using var client = gateway.CreateProxyClient();

        var held = client.GetAsync("/hold");
        Assert.True(await Eventually.TrueAsync(() => a.Held == 1, Bound), "the request did not reach a");

        gateway.WriteConfig(ProxyConfigJson.CatchAll("WeightedRoundRobin", (a, "0"), (b, "1")));
        Assert.True(await Eventually.TrueAsync(() => gateway.Counter("gateway.config.reloads|result=applied") == 1, Bound));

        var after = await Load.RunAsync(gateway, requests: 50, workers: 2);
        a.Gate.SetResult();
        using var heldResponse = await held.WaitAsync(Bound);

        Assert.Equal(HttpStatusCode.OK, heldResponse.StatusCode);
        Assert.Equal("a", await heldResponse.Content.ReadAsStringAsync());
        Assert.Equal(50, after.ByBackend["b"]);
        Assert.Equal(1, a.Requests);
    }

    /// <summary>
    /// A second SIGTERM that comes as the host disposes the drain (the registration's disposal does not wait for a handler
    /// already running) cancelled the disposed token, and the exception on the signal's thread ended the process.
    /// </summary>
    [Fact]
    public async Task ASecondSigtermAsTheDrainIsDisposed_DoesNotThrow()
    {
        await using var a = await TestBackend.StartAsync("a");
        var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (a, "1")));
        var drain = gateway.Services.GetServices<IHostedService>().OfType<YarpGateway.Health.DrainCoordinator>().Single();
        await gateway.StopAsync().WaitAsync(TimeSpan.FromSeconds(30)); // the drain ran: a SIGTERM now is its second
        await gateway.DisposeAsync();

        var signal = new System.Runtime.InteropServices.PosixSignalContext(System.Runtime.InteropServices.PosixSignal.SIGTERM);
        drain.OnSigterm(signal);

        Assert.False(signal.Cancel); // nothing left to end: the signal's default is left to the runtime
    }

    [Fact]
    public async Task ShutdownBegins_Http2ConnectionsGetGoAway_AndEachOpenedDuringTheDelayToo()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (a, "1")), "--Gateway:Shutdown:DrainDelay=00:00:03");
        var traffic = gateway.Services.GetRequiredService<YarpGateway.Endpoints.TrafficCounters>();
        static async Task<HttpStatusCode> GetAsync(HttpClient client)
        {
            using var response = await client.GetAsync("/x");
            Assert.Equal(HttpVersion.Version20, response.Version);
            return response.StatusCode;
        }

        using var first = gateway.CreateHttp2ProxyClient(); // kept open: its idle connection is the one told to go
        Assert.Equal(HttpStatusCode.OK, await GetAsync(first));
        Assert.Equal(HttpStatusCode.OK, await GetAsync(first));
        Assert.Equal(1, traffic.AcceptedConnections); // one HTTP/2 connection carried both

        var stopping = gateway.StopAsync(); // the drain delay runs for 3 s
        Assert.True(await Eventually.TrueAsync(() => traffic.OpenConnections == 0, Bound), "the idle HTTP/2 connection got no GOAWAY");

        // During the delay requests are still served, each on a connection that is then told to go.
        // Each comes from a new client: a client that reused a connection the gateway had just closed
        // could have written its request before reading the GOAWAY, and lost it to the reset (a race
        // HTTP/2 leaves to the client's retry, not something the gateway can settle).
        for (var i = 0; i < 2; i++)
        {
            using var client = gateway.CreateHttp2ProxyClient();
            Assert.Equal(HttpStatusCode.OK, await GetAsync(client));
            Assert.True(await Eventually.TrueAsync(() => traffic.OpenConnections == 0, Bound), $"connection {i + 2}, opened during the delay, got no GOAWAY");
        }

        Assert.Equal(3, traffic.AcceptedConnections);
        Assert.Contains(gateway.Logs.Lines, line => line.Contains("GOAWAY sent to 1 HTTP/2 connections", StringComparison.Ordinal));
        await stopping.WaitAsync(TimeSpan.FromSeconds(15));
    }

    [Fact]
    public async Task DrainedDestination_GetsNoStickySessionRequests()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        JsonObject Config(string weightA)
        {
            var config = ProxyConfigJson.CatchAll("RoundRobin", (a, weightA), (b, "1"));
            config["ReverseProxy"]!["Clusters"]!["c1"]!["SessionAffinity"] = new JsonObject
            {
                ["Enabled"] = true,
                ["Policy"] = "Cookie",
                ["AffinityKeyName"] = "aff",
            };
            return config;
        }

        await using var gateway = await GatewayUnderTest.StartAsync(Config("1"));
        using var client = new HttpClient(new SocketsHttpHandler { UseCookies = false }) { BaseAddress = gateway.ProxyAddress };

        // Find a's affinity cookie.
        string? cookieForA = null;
        for (var i = 0; i < 4 && cookieForA is null; i++)
        {
            using var response = await client.GetAsync("/");
            if (await response.Content.ReadAsStringAsync() == "a")
            {
                cookieForA = response.Headers.GetValues("Set-Cookie").Single().Split(';')[0];
            }
        }

        Assert.NotNull(cookieForA);
        async Task<string> StickyGet()
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/");
            request.Headers.Add("Cookie", cookieForA);
            using var response = await client.SendAsync(request);
            return await response.Content.ReadAsStringAsync();
        }

        Assert.Equal("a", await StickyGet());

        gateway.WriteConfig(Config("0"));
        Assert.True(await Eventually.TrueAsync(() => gateway.Counter("gateway.config.reloads|result=applied") == 1, Bound));

        for (var i = 0; i < 10; i++)
        {
            Assert.Equal("b", await StickyGet());
        }
    }
}

public class ShutdownTests
{
    [Theory]
    [InlineData("1000")] // connection admission waits for the first bytes, then h2c sniffing for the rest
    [InlineData("0")] // the first-request cap off: only h2c sniffing waits
    public async Task Shutdown_ConnectionsThatSentNoRequest_AreClosedAtOnce(string slots)
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (a, "1")),
            $"--Gateway:Admission:Connections:MaxFirstRequestConnections={slots}");
        var traffic = gateway.Services.GetRequiredService<YarpGateway.Endpoints.TrafficCounters>();

        // One connection that sends nothing, one that sent half the HTTP/2 preface: neither is in a
        // request, and neither may hold the shutdown for its 30 s timeout (as each once did).
        using var idle = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        using var halfPreface = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        await halfPreface.SendAsync("PRI * HTTP/2.0\r\n"u8.ToArray());
        Assert.True(await Eventually.TrueAsync(() => traffic.OpenConnections == 2, TimeSpan.FromSeconds(10)), $"{traffic.OpenConnections} connections open");

        await gateway.StopAsync().WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Empty(await RawSocket.ReceiveUntilClosedAsync(idle));
        Assert.Empty(await RawSocket.ReceiveUntilClosedAsync(halfPreface));
    }

    [Fact]
    public async Task Shutdown_WithATlsHandshakeInProgress_DrainsWithoutThrowing()
    {
        // SIGTERM while a client is half way through its TLS handshake (at scale, always one): the
        // drain asked the connection for its ALPN protocol, which throws before the handshake ends,
        // and the exception ended the drain early.
        await using var a = await TestBackend.StartAsync("a");
        var (tlsArgs, _) = await TestCertificate.ProxyTlsArgsAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (a, "1")), tlsArgs);
        var traffic = gateway.Services.GetRequiredService<YarpGateway.Endpoints.TrafficCounters>();

        using var handshaking = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        await handshaking.SendAsync(new byte[] { 0x16, 0x03, 0x01, 0x02, 0x00 }); // a TLS record header, then nothing
        Assert.True(await Eventually.TrueAsync(() => traffic.OpenConnections == 1, TimeSpan.FromSeconds(10)), $"{traffic.OpenConnections} connections open");

        // Kestrel lets the handshake run to its 10 s timeout before the stop completes.
        await gateway.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Empty(await RawSocket.ReceiveUntilClosedAsync(handshaking));
    }

    [Fact]
    public async Task Shutdown_ConnectionWaitingForAdmission_IsClosedAtOnce()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (a, "1")),
            "--Gateway:Admission:Connections:MaxFirstRequestConnections=1", "--Gateway:Admission:Connections:MaxWait=00:01:00",
            "--Gateway:Admission:Connections:MaxFirstRequestTime=00:05:00");
        var admission = gateway.Services.GetRequiredService<YarpGateway.Admission.ConnectionAdmission>();

        // A request in flight (its slot freed when it went to the backend), and the only slot held by a client
        // still sending its first request.
        using var holder = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        await holder.SendAsync("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
        Assert.True(await Eventually.TrueAsync(() => a.Held == 1 && admission.FirstRequestSlotsInUse == 0, TimeSpan.FromSeconds(10)));
        using var slow = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        await slow.SendAsync("GET / HTTP/1.1\r\nHost: x\r\n"u8.ToArray());
        Assert.True(await Eventually.TrueAsync(() => admission.FirstRequestSlotsInUse == 1, TimeSpan.FromSeconds(10)));
        using var waiting = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        await waiting.SendAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
        Assert.True(await Eventually.TrueAsync(() => admission.Waiting == 1, TimeSpan.FromSeconds(10)));

        var stopping = gateway.StopAsync();

        // Closed when shutdown begins, not after the minute MaxWait allows; the request in flight finishes.
        Assert.Empty(await RawSocket.ReceiveUntilClosedAsync(waiting));
        Assert.Equal(1, gateway.Counter("gateway.connection_admission.closed|reason=shutdown"));
        slow.Dispose(); // a request half sent would hold the stop up to its timeout
        a.Gate.SetResult();
        Assert.StartsWith("HTTP/1.1 200", System.Text.Encoding.ASCII.GetString(await RawSocket.ReceiveAtLeastAsync(holder, 12)), StringComparison.Ordinal);
        await stopping.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, a.Requests);
    }

    [Fact]
    public async Task Shutdown_ReadinessFailsAndInFlightRequestFinishes()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (a, "1")));
        using var client = gateway.CreateProxyClient();
        var bound = TimeSpan.FromSeconds(10);

        var held = client.GetAsync("/hold");
        Assert.True(await Eventually.TrueAsync(() => a.Held == 1, bound));

        var stopping = gateway.StopAsync();
        var health = gateway.Services.GetRequiredService<Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckService>();
        var ready = await health.CheckHealthAsync(c => c.Tags.Contains("ready"));
        Assert.Equal(Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Unhealthy, ready.Status);
        Assert.False(stopping.IsCompleted, "shutdown did not wait for the in-flight request");

        a.Gate.SetResult();
        using var response = await held.WaitAsync(bound);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("a", await response.Content.ReadAsStringAsync());
        await stopping.WaitAsync(bound);
    }

    /// <summary>
    /// <c>Gateway:Shutdown:Timeout</c> is live: the host's shutdown timeout kept the sum it started with, so a request the
    /// new timeout let finish was cut at the old one, while the reload's line and the drain's own line named the new one.
    /// </summary>
    [Fact]
    public async Task Shutdown_AnEditedTimeout_IsTheOneTheDrainGets()
    {
        await using var a = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("WeightedRoundRobin", (a, "1"));
        config["Gateway"] = System.Text.Json.Nodes.JsonNode.Parse("""{ "Shutdown": { "Timeout": "00:00:01" } }""");
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        config["Gateway"] = System.Text.Json.Nodes.JsonNode.Parse("""{ "Shutdown": { "Timeout": "00:00:30" } }""");
        gateway.WriteConfig(config);
        var bound = TimeSpan.FromSeconds(10);
        Assert.True(await gateway.SectionReloadedAsync("Gateway:Shutdown"));
        using var client = gateway.CreateProxyClient();
        var held = client.GetAsync("/hold");
        Assert.True(await Eventually.TrueAsync(() => a.Held == 1, bound));

        var stopping = gateway.StopAsync();

        // Past the old timeout (1 s): the request is still waiting, not cut.
        Assert.False(await Eventually.TrueAsync(() => held.IsCompleted, TimeSpan.FromSeconds(3)), "the drain was cut at the timeout the gateway started with");
        a.Gate.SetResult();
        using var response = await held.WaitAsync(bound);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await stopping.WaitAsync(bound);
    }

    /// <summary>
    /// A stream that ends after shutdown has begun, on a connection whose client then sends nothing:
    /// the final GOAWAY and the close come within a couple of seconds of the stream's end, not when
    /// Shutdown:Timeout (a minute here) runs out. Kestrel's heartbeat, which wakes the connection to
    /// notice, stops with the server; before <see cref="YarpGateway.Endpoints.ShutdownHeartbeat"/> this
    /// connection was held until the 20 s bound below ran out. Over h2c with the batching pipe of
    /// one-CPU deployments and without it, and over TLS.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Shutdown_Http2StreamEndingAfterTheStop_ConnectionClosesAtOnce(bool inlineScheduling)
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (a, "1")),
            $"--Gateway:Transport:InlineScheduling={inlineScheduling}", "--Gateway:Shutdown:Timeout=00:01:00");
        await StreamEndingAfterTheStopAsync(gateway, a, Cleartext(gateway));
    }

    [Fact]
    public async Task Shutdown_Http2OnlyCleartextEndpoint_StreamEndingAfterTheStop_ConnectionClosesAtOnce()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (a, "1")),
            "--Kestrel:Endpoints:Proxy:Protocols=Http2", "--Gateway:Shutdown:Timeout=00:01:00");
        await StreamEndingAfterTheStopAsync(gateway, a, Cleartext(gateway));
    }

    [Fact]
    public async Task Shutdown_Http2OverTlsStreamEndingAfterTheStop_ConnectionClosesAtOnce()
    {
        await using var a = await TestBackend.StartAsync("a");
        var (tlsArgs, thumbprint) = await TestCertificate.ProxyTlsArgsAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (a, "1")), [.. tlsArgs, "--Gateway:Shutdown:Timeout=00:01:00"]);
        await StreamEndingAfterTheStopAsync(gateway, a, async token => await TestCertificate.ConnectHttp2Async(gateway.ProxyAddress, thumbprint, token));
    }

    private static Func<CancellationToken, Task<Stream>> Cleartext(GatewayUnderTest gateway)
        => async _ => new System.Net.Sockets.NetworkStream(await RawSocket.ConnectAsync(gateway.ProxyAddress), ownsSocket: true);

    private static async Task StreamEndingAfterTheStopAsync(GatewayUnderTest gateway, TestBackend backend, Func<CancellationToken, Task<Stream>> connect)
    {
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await using var connection = await connect(bound.Token);
        var https = connection is System.Net.Security.SslStream;
        await connection.WriteAsync((byte[])[.. Hostile.Http2Frames.Preface, .. Hostile.Http2Frames.EmptySettings(), .. Hostile.Http2Frames.Request(1, https, path: "/stream")], bound.Token);
        await connection.FlushAsync(bound.Token);
        async Task<(byte Type, byte Flags, int StreamId)> NextAsync()
        {
            var frame = await Hostile.Http2Frames.ReadAsync(connection, bound.Token);
            return (frame.Type, frame.Flags, frame.StreamId);
        }

        // The response has begun (the backend holds the rest until the "stream" gate opens).
        while (await NextAsync() is not (Hostile.Http2Frames.Data, _, 1))
        {
        }

        var stopping = gateway.StopAsync();
        while (await NextAsync() is not (Hostile.Http2Frames.GoAway, _, _))
        {
        }

        backend.GateFor("stream").SetResult();
        var seen = new List<byte>();
        try
        {
            while (true)
            {
                seen.Add((await NextAsync()).Type);
            }
        }
        catch (EndOfStreamException)
        {
            // closed by the gateway
        }

        Assert.Equal(Hostile.Http2Frames.GoAway, seen[^1]);
        Assert.Contains(Hostile.Http2Frames.Data, seen); // the rest of the response came first
        await stopping.WaitAsync(TimeSpan.FromSeconds(10));
    }
}
