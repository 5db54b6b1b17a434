using System.Text;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Hostile;

/// <summary>
/// HTTP/1.1 framing that RFC 9112 lets a server refuse and that proxies disagree on: refused with 400
/// before anything reaches a backend, so a proxy in front of the gateway and the gateway never read
/// different message boundaries from the same bytes.
/// </summary>
public class Http1LeniencyTests
{
    public static TheoryData<string, string> Ambiguous => new()
    {
        { "two Content-Length values", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello" },
        { "two Transfer-Encoding headers", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" },
        { "a lower-case method", "get / HTTP/1.1\r\nHost: x\r\n\r\n" },
        // Kestrel used to read a leading '+' as part of the number (nginx refuses it).
        { "Content-Length with a sign", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello" },
        { "Content-Length with a space inside", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0 5\r\n\r\nhello" },
        { "an empty Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\nhello" },
        // HTTP/1.0 has no Transfer-Encoding (RFC 9112 §6.1): Kestrel read the chunked body, a proxy in front may read none.
        { "Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" },
    };

    [Theory]
    [MemberData(nameof(Ambiguous))]
    public async Task AmbiguousFraming_Gets400_AndReachesNoBackend(string what, string request)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)));
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);

        await socket.SendAsync(Encoding.ASCII.GetBytes(request));
        var head = await RawSocket.ReceiveResponseHeadAsync(socket);

        Assert.True(head.StartsWith("HTTP/1.1 400", StringComparison.Ordinal), $"{what}: got '{head.Split('\r')[0]}'");
        Assert.Equal(0, backend.Requests);
    }

    // Kestrel throws an IOException, not its BadHttpRequestException, for a chunk size too large for a number: the upload
    // share's look at the body let it escape, and the client got 500 and the log an error with its stack, per request.
    [Theory]
    [InlineData("a chunk size too large for a number", "fffffffffffffffffff\r\n")]
    [InlineData("the same after a good chunk", "5\r\nhello\r\nfffffffffffffffffff\r\n")]
    [InlineData("a chunk size that is not hex", "zz\r\n")]
    public async Task ABadChunkSize_Gets400_AndNothingIsLoggedAsAnError(string what, string body)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)));
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);

        await socket.SendAsync(Encoding.ASCII.GetBytes("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body));
        var head = await RawSocket.ReceiveResponseHeadAsync(socket);

        Assert.True(head.StartsWith("HTTP/1.1 400", StringComparison.Ordinal), $"{what}: got '{head.Split('\r')[0]}'");
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.StartsWith("Error ", StringComparison.Ordinal) || l.StartsWith("Critical ", StringComparison.Ordinal));
    }

    // Before: Kestrel undid only the chunking, and the backend got the rest as "Transfer-Encoding: chunked", told
    // nothing of the other coding (tried: "gzip, chunked" reached the backend as compressed bytes, unannounced).
    [Theory]
    [InlineData("gzip, chunked")]
    [InlineData("identity, chunked")]
    [InlineData("deflate,chunked")]
    public async Task ATransferCodingOtherThanChunked_Gets501_AndReachesNoBackend(string codings)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)));
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);

        await socket.SendAsync(Encoding.ASCII.GetBytes($"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {codings}\r\n\r\n5\r\nhello\r\n0\r\n\r\n"));
        var head = await RawSocket.ReceiveResponseHeadAsync(socket);

        Assert.True(head.StartsWith("HTTP/1.1 501", StringComparison.Ordinal), $"{codings}: got '{head.Split('\r')[0]}'");
        Assert.Equal(0, backend.Requests);
    }

    // Framing that is valid, or that Kestrel decides while parsing before any middleware sees the raw
    // header (pinned here, so that a change in Kestrel is noticed): gateway and backend agree on one body.
    public static TheoryData<string, string> OneBody => new()
    {
        // RFC 9112 §6.1 lets a server process such a request by its Transfer-Encoding alone: Kestrel
        // drops the Content-Length, and the backend gets the chunked body without it.
        { "Transfer-Encoding and Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" },
        { "chunked in another case, a space after it", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked \r\n\r\n5\r\nhello\r\n0\r\n\r\n" },
        { "Content-Length with a leading zero", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 05\r\n\r\nhello" },
        { "Content-Length in lower case, spaces around it", "POST / HTTP/1.1\r\nHost: x\r\ncontent-length: \t5 \r\n\r\nhello" },
    };

    [Theory]
    [MemberData(nameof(OneBody))]
    public async Task FramingKestrelResolves_ReachesTheBackendAsOneFiveByteBody(string what, string request)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)));
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);

        await socket.SendAsync(Encoding.ASCII.GetBytes(request));
        var head = await RawSocket.ReceiveResponseHeadAsync(socket);

        Assert.True(head.StartsWith("HTTP/1.1 200", StringComparison.Ordinal), $"{what}: got '{head.Split('\r')[0]}'");
        Assert.Equal(["hello"], backend.Bodies);

        // RFC 9112 §6.3: a server that processes such a request by its Transfer-Encoding MUST close the connection after
        // answering it, so that nothing the client sent after the body can be read as a request of its own.
        Assert.Equal(what == "Transfer-Encoding and Content-Length", head.Contains("\r\nConnection: close\r\n", StringComparison.OrdinalIgnoreCase));
    }
}
