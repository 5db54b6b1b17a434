using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using YarpGateway.Tests.WebSockets;

namespace YarpGateway.Tests.Functional;

/// <summary>
/// Failed forwarding as the operator sees it: one log line a second per cluster and error (YARP's own
/// per-request warnings are off in appsettings.json), and every failure counted by error.
/// </summary>
public class ProxyErrorTests
{
    private static bool IsFromYarp(string line) => line.Contains(" Yarp.", StringComparison.Ordinal);

    [Fact]
    public async Task DestinationDown_EveryFailureCounted_LoggedOnceASecondWithoutStackTraces()
    {
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll(new Uri($"http://127.0.0.1:{LoopbackPort.Unused()}/")));
        using var client = gateway.CreateProxyClient();
        const int Requests = 12;

        var clock = Stopwatch.StartNew();
        for (var i = 0; i < Requests; i++)
        {
            using var response = await client.GetAsync("/x");
            Assert.True(response.StatusCode is HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable, $"request {i}: {(int)response.StatusCode}");
        }

        var elapsed = clock.Elapsed;

        // Refused connections are "request" errors; once outlier ejection takes the only destination
        // out, YARP has none left to try. Every request is counted once, after its retries.
        Assert.Equal(Requests, gateway.CounterSum("gateway.proxy.errors|cluster=c1|error="));
        Assert.Equal(Requests, gateway.Counter("gateway.proxy.errors|cluster=c1|error=request") + gateway.Counter("gateway.proxy.errors|cluster=c1|error=no_available_destinations"));

        var lines = gateway.Logs.Lines.ToArray();
        Assert.True(!lines.Any(IsFromYarp), string.Join('\n', lines.Where(IsFromYarp)));
        var errors = lines.Where(l => l.Contains("[ProxyError]", StringComparison.Ordinal)).ToArray();
        Assert.NotEmpty(errors);
        Assert.True(errors.Length <= 2 * ((int)elapsed.TotalSeconds + 1), $"{errors.Length} lines in {elapsed}: one a second per error kind at most\n{string.Join('\n', errors)}");
        Assert.All(errors, l => Assert.DoesNotContain('\n', l));
        Assert.Contains(errors, l => l.Contains("Proxy error request: route all, cluster c1, destination d1", StringComparison.Ordinal)
            && l.Contains("refused", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task WithRequestIds_TheLineNamesTheRequestItIsAbout_AsTheAccessLogAndTheClientDo()
    {
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll(new Uri($"http://127.0.0.1:{LoopbackPort.Unused()}/")),
            "--Gateway:Telemetry:RequestId=true", "--Gateway:Telemetry:AccessLog=true");
        using var client = gateway.CreateProxyClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/x");
        request.Headers.Add("X-Request-ID", "ingress-7f3a");

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("ingress-7f3a", Assert.Single(response.Headers.GetValues("X-Request-ID")));
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("[ProxyError] Proxy error request: route all, cluster c1, destination d1, request id ingress-7f3a, after", StringComparison.Ordinal));
    }

    [Fact]
    public async Task NoDestinationLeft_Is503_CountedAndLoggedAsSuch()
    {
        var config = ProxyConfigJson.CatchAll(new Uri("http://127.0.0.1:9/"));
        config["ReverseProxy"]!["Clusters"]!["c1"]!["Destinations"]!["d1"]!["Metadata"] = new JsonObject { ["Weight"] = "0" }; // drained
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        using var response = await client.GetAsync("/x");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(1, gateway.Counter("gateway.proxy.errors|cluster=c1|error=no_available_destinations"));
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("Proxy error no_available_destinations: route all, cluster c1, destination -, request id -, after 1 attempt(s); answered 503. no exception.", StringComparison.Ordinal));
        Assert.True(!gateway.Logs.Lines.Any(IsFromYarp), string.Join('\n', gateway.Logs.Lines.Where(IsFromYarp)));
    }

    [Fact]
    public async Task WebSocketClientGoesAway_CountedAsAClientError_NoWarning()
    {
        await using var backend = await EchoWebSocketBackend.StartAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll(backend.Address));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));

        using (var socket = new ClientWebSocket())
        {
            socket.Options.KeepAliveInterval = TimeSpan.Zero;
            await socket.ConnectAsync(new UriBuilder(gateway.ProxyAddress) { Scheme = "ws", Path = "/echo" }.Uri, timeout.Token);
            await socket.SendAsync("hello"u8.ToArray(), WebSocketMessageType.Text, endOfMessage: true, timeout.Token);
            var buffer = new byte[16];
            Assert.Equal(5, (await socket.ReceiveAsync(buffer, timeout.Token)).Count);
            socket.Abort(); // gone without a close handshake, as a phone that loses its network
        }

        Assert.True(
            await Eventually.TrueAsync(() => gateway.CounterSum("gateway.proxy.errors|cluster=c1|error=upgrade_") == 1, TimeSpan.FromSeconds(15)),
            gateway.DescribeCounters("gateway.proxy.errors"));
        Assert.Equal(0, gateway.Counter("gateway.proxy.errors|cluster=c1|error=upgrade_request_destination") + gateway.Counter("gateway.proxy.errors|cluster=c1|error=upgrade_response_destination"));
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.StartsWith("Warning", StringComparison.Ordinal) || l.StartsWith("Error", StringComparison.Ordinal));
    }

    [Fact]
    public async Task BackendSwitchesProtocolsUnasked_TheClientGets502_NotA101()
    {
        // A backend that answers 101 to a request that asked for no upgrade (a bug, or something
        // that is not HTTP) broke the protocol: the client, which asked for a page, is owed a 502.
        // Before, the 101 went through to it, then an empty reply, and nothing was logged.
        await using var backend = await RawTcpBackend.StartAsync(async (socket, cancellationToken) =>
            await socket.SendAsync("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"u8.ToArray(), cancellationToken));
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll(backend.Address));
        using var client = gateway.CreateProxyClient();

        using var response = await client.GetAsync("/page").WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal(1, gateway.Counter("gateway.proxy.errors|cluster=c1|error=response_headers"));
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("Proxy error response_headers: route all, cluster c1, destination d1", StringComparison.Ordinal)
            && l.Contains("101", StringComparison.Ordinal));

        // The same connection serves the next request: the 502 is an ordinary response.
        backend.Heads.Clear();
        using var again = await client.GetAsync("/page").WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(HttpStatusCode.BadGateway, again.StatusCode);
    }

    [Fact]
    public async Task BackendAnswersWithATransferCodingOtherThanChunked_TheClientGets502_NotTheCodedBytes()
    {
        // Before: HttpClient undid only the chunking, YARP dropped the header, and the client got the gzip bytes as
        // a plain chunked body with nothing saying they were compressed. nginx answers such a response 502 too.
        var gzipped = new MemoryStream();
        using (var gzip = new System.IO.Compression.GZipStream(gzipped, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write("hello world\n"u8);
        }

        var body = gzipped.ToArray();
        await using var backend = await RawTcpBackend.StartAsync(async (socket, cancellationToken) =>
            await socket.SendAsync((byte[])[.. "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Type: text/plain\r\n\r\n"u8, .. System.Text.Encoding.ASCII.GetBytes($"{body.Length:x}\r\n"), .. body, .. "\r\n0\r\n\r\n"u8], cancellationToken));
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll(backend.Address));
        using var client = gateway.CreateProxyClient();

        using var response = await client.GetAsync("/page").WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("[ResponseTransferCodingRefused] Destination d1 of cluster c1 answered with Transfer-Encoding 'gzip, chunked'", StringComparison.Ordinal));
    }

    [Fact]
    public async Task BackendCutsTheBodyShort_TheClientSeesItCut_AndTheLineSaysSo()
    {
        // 10 of the 100 bytes promised, then the backend closes: the status has gone to the client,
        // so the gateway can only reset its connection; the line must not read as a 200 served.
        await using var backend = await RawTcpBackend.StartAsync(async (socket, cancellationToken) =>
            await socket.SendAsync("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-a-bit"u8.ToArray(), cancellationToken));
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll(backend.Address));
        using var client = gateway.CreateProxyClient();

        await Assert.ThrowsAnyAsync<HttpRequestException>(async () =>
        {
            using var response = await client.GetAsync("/file").WaitAsync(TimeSpan.FromSeconds(20));
        });

        Assert.True(
            await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("Proxy error response_body_destination", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)),
            string.Join('\n', gateway.Logs.Lines));
        var line = gateway.Logs.Lines.First(l => l.Contains("Proxy error response_body_destination", StringComparison.Ordinal));
        Assert.Contains("answered 200. The response was cut short and the client's connection reset. HttpIOException", line, StringComparison.Ordinal);
        Assert.DoesNotContain("..", line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("1.1", "204 No Content", null)]
    [InlineData("2.0", "204 No Content", null)]
    [InlineData("1.1", "205 Reset Content", 0L)]
    [InlineData("2.0", "205 Reset Content", 0L)]
    public async Task BackendSendsContentWithA204Or205_TheClientGetsTheStatusWithout_NotA500Or502(string version, string status, long? length)
    {
        // Before: for the 204, YARP copied the Content-Length, HttpClient read no content (a 204 has none), and Kestrel
        // failed the response for the 5 bytes never written: 500, and an unhandled exception in the log per request.
        // For the 205, Kestrel refused to write the body: 502, with nothing logged or counted.
        // Connection: close, as the script closes the connection after it: the content a 204 or 205 may not have can
        // be left unread, and a second request on that pooled connection read it for a response (502, once in CI).
        await using var backend = await RawTcpBackend.StartAsync(async (socket, cancellationToken) =>
            await socket.SendAsync(System.Text.Encoding.ASCII.GetBytes($"HTTP/1.1 {status}\r\nContent-Length: 5\r\nConnection: close\r\nX-Item: gone\r\n\r\nhello"), cancellationToken));
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll(backend.Address));
        using var client = version == "2.0" ? gateway.CreateHttp2ProxyClient() : gateway.CreateProxyClient();

        for (var i = 0; i < 2; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Delete, "/item") { Version = Version.Parse(version), VersionPolicy = HttpVersionPolicy.RequestVersionExact };
            using var response = await client.SendAsync(request).WaitAsync(TimeSpan.FromSeconds(20));

            Assert.Equal(int.Parse(status[..3], System.Globalization.CultureInfo.InvariantCulture), (int)response.StatusCode);
            Assert.Equal("gone", Assert.Single(response.Headers.GetValues("X-Item")));
            Assert.Equal(length?.ToString(System.Globalization.CultureInfo.InvariantCulture), response.Content.Headers.NonValidated.TryGetValues("Content-Length", out var values) ? values.ToString() : null);
            Assert.Empty(await response.Content.ReadAsByteArrayAsync());
        }

        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("ApplicationError", StringComparison.Ordinal) || l.Contains("Proxy error", StringComparison.Ordinal));
    }

    /// <summary>
    /// The gateway's own 502 and 503 had no body: a client, or an operator with curl, could not tell one from a backend's
    /// own (nginx, HAProxy and Envoy each name the cause). A backend's own answer passes as it came.
    /// </summary>
    [Fact]
    public async Task TheGatewaysOwn502And503_SayWhy_ABackendsOwnPassesAsItCame()
    {
        await using var backend = await TestBackend.StartAsync("b");
        var config = JsonNode.Parse($$"""
        { "ReverseProxy": {
            "Routes": {
              "dead": { "ClusterId": "dead", "Match": { "Path": "/dead/{**rest}" } },
              "drained": { "ClusterId": "drained", "Match": { "Path": "/drained/{**rest}" } },
              "live": { "ClusterId": "live", "Match": { "Path": "/{**rest}" } } },
            "Clusters": {
              "dead": { "Destinations": { "d": { "Address": "http://127.0.0.1:{{LoopbackPort.Unused()}}/" } } },
              "drained": { "Destinations": { "d": { "Address": "{{backend.Address}}", "Metadata": { "Weight": "0" } } } },
              "live": { "Destinations": { "d": { "Address": "{{backend.Address}}" } } } } } }
        """)!;
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        // The gateway's own carry no-store too: no cache in front keeps an outage's answer.
        Assert.Equal((HttpStatusCode.BadGateway, "gateway: the backend could not be reached\n", true), await SendAsync(client, HttpMethod.Get, "/dead/x"));
        Assert.Equal((HttpStatusCode.ServiceUnavailable, "gateway: no backend of this route is available (none healthy, or all ejected after failures)\n", true), await SendAsync(client, HttpMethod.Get, "/drained/x"));
        Assert.Equal((HttpStatusCode.BadGateway, "gateway: the backend sent no usable answer (its connection failed, or the answer was malformed)\n", true), await SendAsync(client, HttpMethod.Post, "/reset"));
        Assert.Equal((HttpStatusCode.BadGateway, string.Empty, false), await SendAsync(client, HttpMethod.Post, "/answer-at-head/502")); // the backend's own
        Assert.Equal((HttpStatusCode.ServiceUnavailable, string.Empty, false), await SendAsync(client, HttpMethod.Post, "/answer-at-head/503"));
    }

    /// <summary>ASP.NET Core's 404 for a request no route matches was empty, like a backend's own 404 with no body.</summary>
    [Fact]
    public async Task ARequestNoRouteMatches_Gets404SayingSo_ABackendsOwn404PassesAsItCame()
    {
        await using var backend = await TestBackend.StartAsync("b");
        var config = JsonNode.Parse($$"""
        { "ReverseProxy": {
            "Routes": {
              "shop": { "ClusterId": "c", "Match": { "Path": "/{**rest}", "Hosts": [ "shop.example" ] } },
              "reads": { "ClusterId": "c", "Match": { "Path": "/reads/{**rest}", "Methods": [ "GET" ] } } },
            "Clusters": { "c": { "Destinations": { "d": { "Address": "{{backend.Address}}" } } } } } }
        """)!;
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        Assert.Equal((HttpStatusCode.NotFound, YarpGateway.Endpoints.NoRouteMatched.Body, false), await SendAsync(client, HttpMethod.Get, "/x", "other.example"));
        Assert.Equal((HttpStatusCode.NotFound, "gateway: no route matches this request\n", false), await SendAsync(client, HttpMethod.Get, "/x", "www.shop.example"));
        Assert.Equal((HttpStatusCode.NotFound, string.Empty, false), await SendAsync(client, HttpMethod.Post, "/answer-at-head/404", "shop.example")); // the backend's own
        Assert.Equal((HttpStatusCode.NotFound, YarpGateway.Endpoints.NoRouteMatched.Body, false), await SendAsync(client, HttpMethod.Post, "/reads/x", "other.example")); // a method the route does not list: no route, as before (an empty 404)
        Assert.Equal(1, backend.Requests); // the one to the backend
        // Counted as the request ends, which may be just after the client has the whole 404 (it has a length).
        Assert.True(await Eventually.TrueAsync(() => gateway.Counter("gateway.requests.not_proxied|status=404") == 3, TimeSpan.FromSeconds(10)),
            gateway.DescribeCounters("gateway.requests.not_proxied"));
    }

    /// <summary>The answer's status, body, and whether it said <c>Cache-Control: no-store</c>; a POST carries a body.</summary>
    private static async Task<(HttpStatusCode Status, string Body, bool NoStore)> SendAsync(HttpClient client, HttpMethod method, string path, string? host = null)
    {
        using var request = new HttpRequestMessage(method, path) { Content = method == HttpMethod.Post ? new StringContent("x") : null };
        if (host is not null)
        {
            request.Headers.Host = host;
        }

        using var response = await client.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), response.Headers.CacheControl?.NoStore == true);
    }
}
