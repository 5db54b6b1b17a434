using System.Text;

namespace YarpGateway.Tests.Functional;

public class MalformedHttpTests
{
    public static TheoryData<string, string, string> BadRequests => new()
    {
        { "bad request line", "GARBAGE\r\n\r\n", "HTTP/1.1 400" },
        { "bad HTTP version", "GET / HTTP/9.9\r\nHost: x\r\n\r\n", "HTTP/1.1 505" },
        { "missing Host", "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400" },
        { "oversized headers", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + new string('a', 40 * 1024) + "\r\n\r\n", "HTTP/1.1 431" },
        { "header without colon", "GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", "HTTP/1.1 400" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task MalformedRequest_GetsClientError_NothingReachesTheBackend(string what, string request, string expectedStatusLine)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")));
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);

        await socket.SendAsync(Encoding.ASCII.GetBytes(request));
        var response = Encoding.ASCII.GetString(await RawSocket.ReceiveAtLeastAsync(socket, expectedStatusLine.Length));

        Assert.True(response.StartsWith(expectedStatusLine, StringComparison.Ordinal), $"{what}: got '{response.Split('\r')[0]}'");

        // The gateway still serves, and the bad request never reached the backend.
        using var client = gateway.CreateProxyClient();
        using var ok = await client.GetAsync("/");
        Assert.Equal("a", await ok.Content.ReadAsStringAsync());
        Assert.Equal(1, backend.Requests);
    }

    [Fact]
    public async Task MalformedChunkedBody_Gets400_AndTheGatewayKeepsServing()
    {
        // The proxy streams: headers go to the backend before the body is parsed, so the backend may
        // see the request start; the bad chunk aborts that request and the client gets 400.
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")));
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);

        await socket.SendAsync(Encoding.ASCII.GetBytes("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n"));
        var response = Encoding.ASCII.GetString(await RawSocket.ReceiveAtLeastAsync(socket, 12));

        Assert.StartsWith("HTTP/1.1 400", response, StringComparison.Ordinal);
        using var client = gateway.CreateProxyClient();
        using var ok = await client.GetAsync("/");
        Assert.Equal("a", await ok.Content.ReadAsStringAsync());
    }
}
