using System.Net;
using System.Net.Sockets;
using System.Text;

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
