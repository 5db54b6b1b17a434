using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Hostile;

/// <summary>Requests the gateway will not forward: refused with the client error that says why, and never held against a destination.</summary>
public class RequestRefusalTests
{
    private static async Task<string> SendRawAsync(GatewayUnderTest gateway, string request)
    {
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        await socket.SendAsync(Encoding.ASCII.GetBytes(request));
        return await RawSocket.ReceiveResponseHeadAsync(socket);
    }

    [Fact]
    public async Task PlainConnect_Gets405_AndEjectsNothing()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (a, null), (b, null)));

        for (var i = 0; i < 10; i++)
        {
            var head = await SendRawAsync(gateway, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
            Assert.StartsWith("HTTP/1.1 405", head, StringComparison.Ordinal);
            Assert.Contains("Allow: GET", head, StringComparison.Ordinal);
        }

        Assert.Equal(0, gateway.CounterSum("gateway.outlier.ejections"));
        Assert.Equal(0, gateway.CounterSum("gateway.proxy.errors"));
        Assert.Equal(0, a.Requests + b.Requests);
    }

    [Fact]
    public async Task ExtendedConnectWithAnUnknownProtocol_Gets501_AndEjectsNothing()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (a, null), (b, null)));
        using var client = new HttpClient();

        for (var i = 0; i < 10; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Connect, new Uri(gateway.ProxyAddress, "/tunnel")) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
            request.Headers.Protocol = "not-websocket";
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.NotImplemented, response.StatusCode);
        }

        Assert.Equal(0, gateway.CounterSum("gateway.outlier.ejections"));
        Assert.Equal(0, a.Requests + b.Requests);
    }

    [Fact]
    public async Task Trace_Gets405_UnlessTheRouteAllowsIt()
    {
        await using var a = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.Config(
            [("plain", "/{**rest}", "c1"), ("traced", "/traced/{**rest}", "c1")],
            [("c1", "RoundRobin", [(a, null)])]);
        config["ReverseProxy"]!["Routes"]!["traced"]!["Metadata"] = new JsonObject { ["AllowTrace"] = "true" };
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        using var refused = await client.SendAsync(new HttpRequestMessage(HttpMethod.Trace, "/x"));
        using var allowed = await client.SendAsync(new HttpRequestMessage(HttpMethod.Trace, "/traced/x"));

        Assert.Equal(HttpStatusCode.MethodNotAllowed, refused.StatusCode);
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        Assert.Equal(1, a.Requests);
    }
}
