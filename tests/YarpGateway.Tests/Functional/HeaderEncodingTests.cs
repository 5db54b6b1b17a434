using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace YarpGateway.Tests.Functional;

/// <summary>
/// Header values that are not ASCII go through byte for byte, as through nginx. Before, HttpClient and Kestrel
/// each took ASCII only: a backend's UTF-8 file name in <c>Content-Disposition</c> and a client's UTF-8 header
/// value each got 502 after two retries, counted against the destination (tried on the Release build).
/// </summary>
public class HeaderEncodingTests
{
    // "résumé" in UTF-8, and "café" with a Latin-1 byte: what legacy and current backends send.
    private static readonly byte[] Utf8FileName = "attachment; filename=\"r\u00e9sum\u00e9.pdf\""u8.ToArray();
    private static readonly byte[] Latin1Value = [.. "caf"u8, 0xE9];

    private static JsonObject RouteTo(Uri address, JsonObject? httpClient = null)
    {
        var config = ProxyConfigJson.CatchAll(address);
        if (httpClient is not null)
        {
            config["ReverseProxy"]!["Clusters"]!["c1"]!["HttpClient"] = httpClient;
        }

        return config;
    }

    private static Task<RawTcpBackend> StartBackendAsync(params byte[][] headerLines)
        => RawTcpBackend.StartAsync(async (socket, cancellationToken) =>
        {
            var response = new List<byte>("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"u8.ToArray());
            foreach (var line in headerLines)
            {
                response.AddRange(line);
                response.AddRange("\r\n"u8.ToArray());
            }

            response.AddRange("\r\nok"u8.ToArray());
            await socket.SendAsync(response.ToArray(), cancellationToken);
        });

    private static HttpClient ByteClient(GatewayUnderTest gateway, Version version) => new(new SocketsHttpHandler
    {
        RequestHeaderEncodingSelector = (_, _) => Encoding.UTF8,
        ResponseHeaderEncodingSelector = (_, _) => Encoding.Latin1, // one character per byte: the bytes as sent
    })
    {
        BaseAddress = gateway.ProxyAddress,
        DefaultRequestVersion = version,
        DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        Timeout = TimeSpan.FromSeconds(20),
    };

    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task ABackendsNonAsciiResponseHeaders_ReachTheClientByteForByte(string version)
    {
        await using var backend = await StartBackendAsync([.. "Content-Disposition: "u8, .. Utf8FileName], [.. "X-Latin: "u8, .. Latin1Value]);
        await using var gateway = await GatewayUnderTest.StartAsync(RouteTo(backend.Address));
        using var client = ByteClient(gateway, Version.Parse(version));

        using var response = await client.GetAsync("/file");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Utf8FileName, Encoding.Latin1.GetBytes(Assert.Single(response.Content.Headers.GetValues("Content-Disposition"))));
        Assert.Equal(Latin1Value, Encoding.Latin1.GetBytes(Assert.Single(response.Headers.GetValues("X-Latin"))));
        Assert.Equal(1, backend.Connections);
        Assert.Equal(0, gateway.CounterSum("gateway.proxy.errors|"));
    }

    [Fact]
    public async Task AClientsUtf8RequestHeader_ReachesTheBackendByteForByte()
    {
        await using var backend = await StartBackendAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(RouteTo(backend.Address));
        using var client = ByteClient(gateway, HttpVersion.Version11);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/x");
        request.Headers.TryAddWithoutValidation("X-Name", "Jos\u00e9 \u0141ukasz");

        using var response = await client.SendAsync(request);

        // The lean upgrade connector writes a WebSocket's head itself, in the same encoding. (ClientWebSocket sends
        // ASCII only, so the upgrade is written by hand, its header in UTF-8.)
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        await socket.SendAsync(Upgrade("X-Name: Jos\u00e9 \u0141ukasz"u8));
        Assert.StartsWith("HTTP/1.1 200", await RawSocket.ReceiveResponseHeadAsync(socket), StringComparison.Ordinal);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, backend.Heads.Count);
        Assert.All(backend.Heads, text =>
        {
            var head = Encoding.Latin1.GetBytes(text);
            Assert.True(head.AsSpan().IndexOf("X-Name: Jos\u00e9 \u0141ukasz\r\n"u8) >= 0, text);
        });
    }

    private static byte[] Upgrade(ReadOnlySpan<byte> header)
        => [.. "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"u8, .. header, .. "\r\n\r\n"u8];

    [Fact]
    public async Task AClusterThatNamesARequestEncoding_GetsItsHeadersInThatEncoding_WebSocketUpgradesToo()
    {
        await using var backend = await RawTcpBackend.StartAsync(async (socket, cancellationToken) =>
            await socket.SendAsync("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"u8.ToArray(), cancellationToken));
        await using var gateway = await GatewayUnderTest.StartAsync(RouteTo(backend.Address, new JsonObject { ["RequestHeaderEncoding"] = "iso-8859-1" }));
        using var client = ByteClient(gateway, HttpVersion.Version11);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/x");
        request.Headers.TryAddWithoutValidation("X-Name", "Jos\u00e9");
        using var response = await client.SendAsync(request);

        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        await socket.SendAsync(Upgrade("X-Name: Jos\u00e9"u8));
        Assert.StartsWith("HTTP/1.1 403", await RawSocket.ReceiveResponseHeadAsync(socket), StringComparison.Ordinal);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal(2, backend.Heads.Count);
        Assert.All(backend.Heads, head => Assert.Contains("X-Name: Jos\u00e9\r\n", head, StringComparison.Ordinal));
    }

    [Fact]
    public async Task AResponseHeaderWithAControlCharacter_Is502AtOnce_NotRetried()
    {
        // Kestrel will not write it, and every attempt would fail the same: before, a GET went to the backend three times.
        await using var backend = await StartBackendAsync("X-Ctl: a\u0001b"u8.ToArray());
        await using var gateway = await GatewayUnderTest.StartAsync(RouteTo(backend.Address));
        using var client = gateway.CreateProxyClient();

        using var response = await client.GetAsync("/x");

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Single(backend.Heads);
        Assert.Equal(1, gateway.Counter("gateway.proxy.errors|cluster=c1|error=response_headers"));
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("Proxy error response_headers: route all, cluster c1, destination d1, request id -, after 1 attempt(s)", StringComparison.Ordinal));
    }
}
