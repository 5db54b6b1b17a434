using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using YarpGateway.Endpoints;

namespace YarpGateway.Tests.Functional;

public class EndpointSeparationTests
{
    [Fact]
    public async Task HealthPathOnProxyPort_IsProxiedLikeAnyRequest()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")));
        using var proxy = gateway.CreateProxyClient();

        using var response = await proxy.GetAsync("/healthz/ready");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("a", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, backend.Requests);
    }

    [Fact]
    public async Task HealthPathOnProxyPort_WithoutMatchingRoute_Is404()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.Config(("api", "/api/{**rest}", "c1"), ("c1", "WeightedRoundRobin", [(backend, "1")])));
        using var proxy = gateway.CreateProxyClient();

        using var response = await proxy.GetAsync("/healthz/live");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task ManagementPort_NeverProxies()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")));
        using var management = gateway.CreateManagementClient();

        foreach (var path in new[] { "/", "/api/x", "/healthz", "/healthz/readyz" })
        {
            using var response = await management.GetAsync(path);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }

        Assert.Equal(0, backend.Requests);
    }

    [Fact]
    public async Task NoServerHeaderOfItsOwn_TheBackendsPassesThrough()
    {
        await using var backend = await TestBackend.StartAsync("a"); // Kestrel: sends "Server: Kestrel"
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")));
        using var management = gateway.CreateManagementClient();
        using var proxy = gateway.CreateProxyClient();

        using var health = await management.GetAsync("/healthz/live");
        using var proxied = await proxy.GetAsync("/x");

        Assert.Empty(health.Headers.Server);
        Assert.Equal("Kestrel", Assert.Single(proxied.Headers.Server).Product?.Name);
    }

    [Fact]
    public async Task ProxyPort_ServesHttp2PriorKnowledgeAndHttp11()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")));
        using var proxy = gateway.CreateProxyClient();

        using var h2 = await proxy.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/x") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact });
        using var h1 = await proxy.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/x") { Version = HttpVersion.Version11, VersionPolicy = HttpVersionPolicy.RequestVersionExact });

        Assert.Equal(HttpVersion.Version20, h2.Version);
        Assert.Equal("a", await h2.Content.ReadAsStringAsync());
        Assert.Equal(HttpVersion.Version11, h1.Version);
        Assert.Equal("a", await h1.Content.ReadAsStringAsync());
        Assert.Equal(2, backend.Requests);

        // What the operator reads at start: the gateway's line, and no warning from Kestrel that
        // HTTP/2 is off (appsettings.json leaves the endpoint's Protocols unset for that reason).
        Assert.Contains(gateway.Logs.Lines, l => l.StartsWith("Information YarpGateway.Endpoints.GatewayKestrelSetup[CleartextHttp2] Proxy endpoint http://127.0.0.1:0 serves HTTP/1.1 and HTTP/2 with prior knowledge (h2c)", StringComparison.Ordinal));
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.StartsWith("Warning", StringComparison.Ordinal) && l.Contains("Microsoft.AspNetCore.Server.Kestrel", StringComparison.Ordinal)); // its own or through the throttle
    }

    [Fact]
    public async Task ProxyPort_ProtocolsSetExplicitly_StillServesHttp2_AndSaysKestrelsWarningIsWrong()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")), "--Kestrel:Endpoints:Proxy:Protocols=Http1AndHttp2");
        using var proxy = gateway.CreateProxyClient();

        using var h2 = await proxy.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/x") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact });

        Assert.Equal(HttpVersion.Version20, h2.Version);
        var kestrel = Assert.Single(gateway.Logs.Lines, l => l.StartsWith("Warning YarpGateway.Telemetry.KestrelLogThrottle[KestrelThrottled] Microsoft.AspNetCore.Server.Kestrel[", StringComparison.Ordinal));
        Assert.Contains("HTTP/2 is not enabled", kestrel, StringComparison.Ordinal);
        Assert.Contains(gateway.Logs.Lines, l => l.StartsWith("Information YarpGateway.Endpoints.GatewayKestrelSetup[CleartextHttp2KestrelWarning]", StringComparison.Ordinal)
            && l.Contains("Kestrel's warning that HTTP/2 is not enabled for it is wrong", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ProxyPortWithTls_ProtocolsUnset_ServesHttp11AndHttp2ByAlpn_NotHttp3()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var (tlsArgs, thumbprint) = await TestCertificate.ProxyTlsArgsAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")), tlsArgs);
        using var proxy = new HttpClient(new SocketsHttpHandler { SslOptions = { RemoteCertificateValidationCallback = (_, served, _, _) => served is X509Certificate2 c && c.Thumbprint == thumbprint } })
        {
            BaseAddress = new UriBuilder(gateway.ProxyAddress) { Scheme = "https" }.Uri,
            Timeout = TimeSpan.FromSeconds(10),
        };

        using var h2 = await proxy.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/x") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact });
        using var h1 = await proxy.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/x") { Version = HttpVersion.Version11, VersionPolicy = HttpVersionPolicy.RequestVersionExact });

        Assert.Equal(HttpVersion.Version20, h2.Version);
        Assert.Equal("a", await h2.Content.ReadAsStringAsync());
        Assert.Equal(HttpVersion.Version11, h1.Version);
        Assert.Equal(HttpProtocols.Http1AndHttp2, Assert.Single(gateway.Services.GetRequiredService<GatewayListeners>().ProxyProtocols));
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("GatewayKestrelSetup[CleartextHttp2", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ProxyPortWithSni_WithoutAStarEntry_RefusesOtherNames_AndSaysSoAtStart(bool star)
    {
        // Kestrel refuses a handshake for a name no Sni entry has, and says so only at Debug: before, every client of
        // another name (or of none) failed without a line.
        await using var backend = await TestBackend.StartAsync("a");
        var (tlsArgs, thumbprint) = await TestCertificate.ProxyTlsArgsAsync();
        string[] sni = star
            ? ["--Kestrel:Endpoints:Proxy:Sni:a.example:Protocols=Http1AndHttp2", "--Kestrel:Endpoints:Proxy:Sni:*:Protocols=Http1AndHttp2"]
            : ["--Kestrel:Endpoints:Proxy:Sni:a.example:Protocols=Http1AndHttp2"];
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")), [.. tlsArgs, .. sni]);

        Assert.True(await HandshakeAsync("a.example"));
        Assert.Equal(star, await HandshakeAsync("b.example"));
        var warnings = gateway.Logs.Lines.Where(l => l.StartsWith("Warning YarpGateway.Endpoints.GatewayKestrelSetup[SniWithoutFallback]", StringComparison.Ordinal)).ToList();
        if (star)
        {
            Assert.Empty(warnings);
        }
        else
        {
            Assert.Contains("Kestrel:Endpoints:Proxy:Sni names 'a.example' and no '*'", Assert.Single(warnings), StringComparison.Ordinal);
        }

        async Task<bool> HandshakeAsync(string name)
        {
            using var client = new System.Net.Sockets.TcpClient();
            await client.ConnectAsync(gateway.ProxyAddress.Host, gateway.ProxyAddress.Port);
            await using var tls = new System.Net.Security.SslStream(client.GetStream());
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await tls.AuthenticateAsClientAsync(new System.Net.Security.SslClientAuthenticationOptions
                {
                    TargetHost = name,
                    RemoteCertificateValidationCallback = (_, served, _, _) => served is X509Certificate2 c && c.Thumbprint == thumbprint,
                }, timeout.Token);
                return true;
            }
            catch (Exception ex) when (ex is System.Security.Authentication.AuthenticationException or IOException)
            {
                return false;
            }
        }
    }

    [Fact]
    public async Task ProxyPort_Http1Only_NoSniffing_NoHttp2()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")), "--Kestrel:Endpoints:Proxy:Protocols=Http1");
        using var proxy = gateway.CreateProxyClient();

        await Assert.ThrowsAsync<HttpRequestException>(() => proxy.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/x") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact }));
        using var h1 = await proxy.GetAsync("/x");

        Assert.Equal(HttpVersion.Version11, h1.Version);
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("GatewayKestrelSetup[CleartextHttp2", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")] // preface only, split below
    [InlineData("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")] // starts like the preface
    public async Task PrefaceSniffing_HandlesBytesArrivingOneAtATime(string request)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")));
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);

        foreach (var b in Encoding.ASCII.GetBytes(request))
        {
            await socket.SendAsync(new[] { b });
        }

        var isHttp2 = request.StartsWith("PRI", StringComparison.Ordinal);
        if (isHttp2)
        {
            // A server SETTINGS frame: 3-byte length, type 0x4.
            var frame = await RawSocket.ReceiveAtLeastAsync(socket, 9);
            Assert.Equal(0x4, frame[3]);
        }
        else
        {
            var response = Encoding.ASCII.GetString(await RawSocket.ReceiveAtLeastAsync(socket, 12));
            Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
            Assert.Equal(1, backend.Requests);
        }
    }
}

public class Http2SchemeTests
{
    [Theory]
    [InlineData(0x86, 200, null)] // :scheme http (HPACK static index 6)
    [InlineData(0x87, 400, null)] // :scheme https (index 7): a cleartext client may not claim TLS
    [InlineData(0x86, 200, "Http2")] // the same on a cleartext endpoint that serves HTTP/2 only (Kestrel's own h2c, no sniffing)
    [InlineData(0x87, 400, "Http2")]
    public async Task SchemeOverCleartextHttp2_MustBeHttp(byte schemeField, int expectedStatus, string? protocols)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")),
            protocols is null ? [] : [$"--Kestrel:Endpoints:Proxy:Protocols={protocols}"]);
        await using var connection = new System.Net.Sockets.NetworkStream(await RawSocket.ConnectAsync(gateway.ProxyAddress), ownsSocket: true);

        var status = await RequestStatusAsync(connection, schemeField);
        Assert.Equal(expectedStatus, status);
        Assert.Equal(expectedStatus == 200 ? 1 : 0, backend.Requests);
    }

    [Theory]
    [InlineData(0x87, 200)] // :scheme https over TLS
    [InlineData(0x86, 400)] // :scheme http over TLS: a TLS client may not claim cleartext either
    public async Task SchemeOverTlsHttp2_MustBeHttps(byte schemeField, int expectedStatus)
    {
        await using var backend = await TestBackend.StartAsync("a");
        var (tlsArgs, thumbprint) = await TestCertificate.ProxyTlsArgsAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")), tlsArgs);
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await using var tls = await TestCertificate.ConnectHttp2Async(gateway.ProxyAddress, thumbprint, bound.Token);

        var status = await RequestStatusAsync(tls, schemeField);
        Assert.Equal(expectedStatus, status);
        Assert.Equal(expectedStatus == 200 ? 1 : 0, backend.Requests);
    }

    /// <summary>
    /// Sends the preface, SETTINGS and one GET with the given :scheme field, then reads frames until the
    /// HEADERS frame of stream 1: its status (Kestrel encodes :status 200 as 0x88 and 400 as 0x8c,
    /// static table), -1 for a GOAWAY first, -2 for a close first; bounded at 10 s.
    /// </summary>
    private static async Task<int> RequestStatusAsync(Stream connection, byte schemeField)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var authority = System.Text.Encoding.ASCII.GetBytes("localhost");
        // :method GET (index 2), :path / (index 4), :scheme, :authority as a literal with indexed name 1.
        byte[] headers = [0x82, 0x84, schemeField, 0x41, (byte)authority.Length, .. authority];
        byte[] request =
        [
            .. Hostile.Http2Frames.Preface,
            .. Hostile.Http2Frames.EmptySettings(),
            .. Hostile.Http2Frames.Frame(Hostile.Http2Frames.Headers, Hostile.Http2Frames.EndStream | Hostile.Http2Frames.EndHeaders, 1, headers),
        ];
        await connection.WriteAsync(request, cts.Token);
        await connection.FlushAsync(cts.Token);

        try
        {
            while (true)
            {
                var frame = await Hostile.Http2Frames.ReadAsync(connection, cts.Token);
                if (frame.Type == Hostile.Http2Frames.Headers && frame.StreamId == 1)
                {
                    return frame.Payload[0] switch { 0x88 => 200, 0x8c => 400, var other => -other };
                }

                if (frame.Type == Hostile.Http2Frames.GoAway)
                {
                    return -1;
                }
            }
        }
        catch (EndOfStreamException)
        {
            return -2;
        }
    }
}
