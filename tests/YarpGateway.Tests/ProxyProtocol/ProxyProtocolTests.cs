using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.ProxyProtocol;

/// <summary>
/// <c>Gateway:ProxyProtocol</c> over real sockets: the client's address from the header reaches the backend
/// (<c>X-Forwarded-For</c>, <c>X-Real-IP</c>) over HTTP/1.1 and HTTP/2, a load balancer's own connection keeps its
/// address, and a connection without a header, with a bad one, or from an untrusted peer is closed unanswered,
/// counted and logged.
/// </summary>
public class ProxyProtocolTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private static Task<GatewayUnderTest> StartAsync(TestBackend backend, string settings = """{ "Enabled": true }""", params string[] extraArgs)
    {
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["Gateway"] = new JsonObject { ["ProxyProtocol"] = JsonNode.Parse(settings) };
        return GatewayUnderTest.StartAsync(config, extraArgs);
    }

    /// <summary>Writes <paramref name="first"/> then <paramref name="rest"/> on a new connection (two writes), and reads the answer's head; "" when the connection was closed unanswered.</summary>
    private static async Task<string> ExchangeAsync(GatewayUnderTest gateway, byte[] first, byte[] rest)
    {
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        return await RawSocket.ExchangeAsync(socket, first, rest);
    }

    /// <summary>A client's connect that writes <paramref name="header"/> first, as a load balancer would.</summary>
    private static Func<SocketsHttpConnectionContext, CancellationToken, ValueTask<Stream>> SendingFirst(byte[] header) => async (context, cancellationToken) =>
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
        var stream = new NetworkStream(socket, ownsSocket: true);
        await stream.WriteAsync(header, cancellationToken);
        return stream;
    };

    private static byte[] Get(string path = "/x") => Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: gw\r\nX-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nConnection: close\r\n\r\n");

    [Fact]
    public async Task Version1_TheClientsAddress_ReachesTheBackend_EvenWhenTheHeaderComesInPieces()
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await StartAsync(backend);
        var header = Encoding.ASCII.GetBytes("PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n");

        var answer = await ExchangeAsync(gateway, header[..11], [.. header[11..], .. Get()]);

        Assert.StartsWith("HTTP/1.1 200", answer, StringComparison.Ordinal);
        var headers = backend.RequestHeaders.Last();
        Assert.Equal("203.0.113.7", headers["X-Forwarded-For"]);
        Assert.Equal("203.0.113.7", headers["X-Real-IP"]);
    }

    [Fact]
    public async Task Version2OverHttp2_TheClientsIPv6Address_ReachesTheBackend()
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await StartAsync(backend, """{ "Enabled": true, "TrustedNetworks": [ "127.0.0.0/8" ] }""");
        var body = new byte[36];
        IPAddress.Parse("2001:db8::9").GetAddressBytes().CopyTo(body, 0);
        IPAddress.Parse("2001:db8::1").GetAddressBytes().CopyTo(body, 16);
        body[32] = 0x15; // port 5555
        body[33] = 0xB3;
        var header = ProxyProtocolHeaderTests.V2(0x21, 0x21, body);
        using var client = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = SendingFirst(header),
        })
        {
            BaseAddress = gateway.ProxyAddress,
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = Bound,
        };

        for (var i = 0; i < 3; i++)
        {
            using var response = await client.GetAsync("/x");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(HttpVersion.Version20, response.Version);
        }

        Assert.All(backend.RequestHeaders, headers => Assert.Equal("2001:db8::9", headers["X-Forwarded-For"]));
        Assert.Equal(0, gateway.CounterSum("gateway.proxy_protocol.refused"));
    }

    [Fact]
    public async Task OverTls_TheHeaderComesBeforeTheHandshake()
    {
        var directory = Directory.CreateTempSubdirectory("yarpgateway-proxy-protocol-").FullName;
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=gateway", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        File.WriteAllText(Path.Combine(directory, "tls.crt"), certificate.ExportCertificatePem());
        File.WriteAllText(Path.Combine(directory, "tls.key"), key.ExportPkcs8PrivateKeyPem());
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await StartAsync(backend, """{ "Enabled": true }""",
            "--Kestrel:Endpoints:Proxy:Url=https://127.0.0.1:0",
            $"--Kestrel:Endpoints:Proxy:Certificate:Path={Path.Combine(directory, "tls.crt")}",
            $"--Kestrel:Endpoints:Proxy:Certificate:KeyPath={Path.Combine(directory, "tls.key")}");
        var header = Encoding.ASCII.GetBytes("PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n");
        var thumbprint = certificate.Thumbprint;
        using var client = new HttpClient(new SocketsHttpHandler
        {
            SslOptions = { RemoteCertificateValidationCallback = (_, served, _, _) => (served as X509Certificate2)?.Thumbprint == thumbprint },
            ConnectCallback = SendingFirst(header),
        })
        { Timeout = Bound };

        using var response = await client.GetAsync(new Uri($"https://127.0.0.1:{gateway.ProxyAddress.Port}/x"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("203.0.113.7", backend.RequestHeaders.Last()["X-Real-IP"]);
        Directory.Delete(directory, recursive: true);
    }

    [Fact]
    public async Task ALoadBalancersOwnConnection_KeepsItsAddress()
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await StartAsync(backend);

        var answer = await ExchangeAsync(gateway, ProxyProtocolHeaderTests.V2(0x20, 0x00, []), Get());

        Assert.StartsWith("HTTP/1.1 200", answer, StringComparison.Ordinal);
        Assert.Equal("127.0.0.1", backend.RequestHeaders.Last()["X-Real-IP"]);

        // Every reason is exported from the start (at 0 here), so that the first refusal is a rise an alert sees.
        using var management = gateway.CreateManagementClient();
        var scrape = await management.GetStringAsync("/metrics");
        Assert.All(["missing", "malformed", "untrusted_peer", "timeout"], reason =>
            Assert.Contains($"gateway_proxy_protocol_refused_total{{reason=\"{reason}\"}} ", scrape, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("missing", "")]
    [InlineData("malformed", "PROXY TCP4 203.0.113.7 10.0.0.1 51234\r\n")]
    public async Task AConnectionWithoutAGoodHeader_IsClosedUnanswered_CountedAndLogged(string reason, string header)
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await StartAsync(backend);

        var answer = await ExchangeAsync(gateway, Encoding.ASCII.GetBytes(header), Get());

        Assert.Equal("", answer);
        Assert.Empty(backend.RequestHeaders);
        Assert.True(await Eventually.TrueAsync(() => gateway.Counter($"gateway.proxy_protocol.refused|reason={reason}") == 1, Bound), gateway.DescribeCounters("gateway.proxy_protocol"));
        Assert.Contains(gateway.Logs.Lines, line => line.Contains("[ProxyProtocolRefused]", StringComparison.Ordinal) && line.Contains($": {reason},", StringComparison.Ordinal));

        // The gateway goes on serving connections that do send one.
        var served = await ExchangeAsync(gateway, Encoding.ASCII.GetBytes("PROXY TCP4 203.0.113.8 10.0.0.1 1 443\r\n"), Get());
        Assert.StartsWith("HTTP/1.1 200", served, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NotRequired_AConnectionWithoutAHeader_IsServedAsItsPeer_AndOneWithAHeaderAsItsClient()
    {
        // For switching a load balancer over: both kinds of connection are served meanwhile.
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await StartAsync(backend, """{ "Enabled": true, "Required": false }""");

        var without = await ExchangeAsync(gateway, [], Get());
        var with = await ExchangeAsync(gateway, Encoding.ASCII.GetBytes("PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n"), Get());
        var malformed = await ExchangeAsync(gateway, Encoding.ASCII.GetBytes("PROXY TCP4 203.0.113.7\r\n"), Get());

        Assert.StartsWith("HTTP/1.1 200", without, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200", with, StringComparison.Ordinal);
        Assert.Equal("", malformed);
        Assert.Equal(["127.0.0.1", "203.0.113.7"], backend.RequestHeaders.Select(headers => headers["X-Real-IP"]));
    }

    [Fact]
    public async Task APeerOutsideTheTrustedNetworks_IsClosed_ItsHeaderUnread()
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await StartAsync(backend, """{ "Enabled": true, "TrustedNetworks": [ "10.0.0.0/8" ] }""");

        var answer = await ExchangeAsync(gateway, Encoding.ASCII.GetBytes("PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n"), Get());

        Assert.Equal("", answer);
        Assert.Empty(backend.RequestHeaders);
        Assert.True(await Eventually.TrueAsync(() => gateway.Counter("gateway.proxy_protocol.refused|reason=untrusted_peer") == 1, Bound), gateway.DescribeCounters("gateway.proxy_protocol"));
    }

    [Fact]
    public async Task AHeaderThatStopsHalfWay_IsClosedAtKestrelsRequestHeadersTimeout()
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await StartAsync(backend, """{ "Enabled": true }""", "--Kestrel:Limits:RequestHeadersTimeout=00:00:01");

        var answer = await ExchangeAsync(gateway, Encoding.ASCII.GetBytes("PROXY TCP4 "), []);

        Assert.Equal("", answer);
        Assert.True(await Eventually.TrueAsync(() => gateway.Counter("gateway.proxy_protocol.refused|reason=timeout") == 1, Bound), gateway.DescribeCounters("gateway.proxy_protocol"));
    }

    [Fact]
    public async Task Disabled_BytesLikeAHeader_AreABadRequest()
    {
        // Off (the default) nothing reads a header: a client's PROXY line is a bad request line, and no address comes from it.
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await StartAsync(backend, "{}");

        var answer = await ExchangeAsync(gateway, Encoding.ASCII.GetBytes("PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n"), Get());

        Assert.StartsWith("HTTP/1.1 400", answer, StringComparison.Ordinal);
        Assert.Empty(backend.RequestHeaders);
    }
}
