using System.Text;
using System.Text.Json.Nodes;

namespace YarpGateway.Tests.Functional;

/// <summary>
/// A route that strips a prefix tells its backend which, as Traefik, Spring Cloud Gateway and Kong do, so that the
/// backend's links stay under it. Before, YARP's default forwarding headers removed X-Forwarded-Prefix, a route's own
/// RequestHeader transform for it included.
/// </summary>
public class ForwardedPrefixTests
{
    [Theory]
    [InlineData("/api/account", "/api")]
    [InlineData("/api", "/api")]
    [InlineData("//api/x", "/api")]       // routed with slashes merged, stripped the same way
    public async Task APathRemovePrefixRoute_SendsThePrefix_InPlaceOfTheClients(string target, string prefix)
    {
        await using var backend = await TestBackend.StartAsync("api");
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend, new JsonObject { ["PathRemovePrefix"] = "/api" }));

        var headers = await ForwardAsync(gateway, backend, target);

        Assert.Equal(prefix, headers["X-Forwarded-Prefix"]);
        Assert.Equal("127.0.0.1", headers["X-Forwarded-For"]); // the rest of YARP's defaults as they were
        Assert.Equal("http", headers["X-Forwarded-Proto"]);
        Assert.Equal("gateway.example", headers["X-Forwarded-Host"]);
        Assert.Equal("127.0.0.1", headers["X-Real-IP"]);
        Assert.False(headers.ContainsKey("Forwarded"));
    }

    [Fact]
    public async Task ARoutesOwnXForwardedPrefix_ReachesTheBackend()
    {
        await using var backend = await TestBackend.StartAsync("api");
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend, new JsonObject { ["RequestHeader"] = "X-Forwarded-Prefix", ["Set"] = "/shop" }));

        var headers = await ForwardAsync(gateway, backend, "/api/x");

        Assert.Equal("/shop", headers["X-Forwarded-Prefix"]); // it was removed
        Assert.Equal("127.0.0.1", headers["X-Forwarded-For"]);
    }

    [Fact]
    public async Task ARouteWithoutAPrefixToName_SendsNone_NorTheClients()
    {
        await using var backend = await TestBackend.StartAsync("api");
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend, null));

        var headers = await ForwardAsync(gateway, backend, "/api/x");

        Assert.False(headers.ContainsKey("X-Forwarded-Prefix"));
        Assert.Equal("127.0.0.1", headers["X-Forwarded-For"]);
    }

    [Fact]
    public async Task ARouteThatChoseItsForwardingHeaders_IsLeftAsItChose()
    {
        await using var backend = await TestBackend.StartAsync("api");
        var config = Config(backend, new JsonObject { ["PathRemovePrefix"] = "/api" });
        ((JsonArray)config["ReverseProxy"]!["Routes"]!["api"]!["Transforms"]!).Add(new JsonObject { ["X-Forwarded"] = "Off" });
        await using var gateway = await GatewayUnderTest.StartAsync(config);

        var headers = await ForwardAsync(gateway, backend, "/api/x");

        Assert.Equal("/evil", headers["X-Forwarded-Prefix"]); // Off: the client's headers as they came, YARP's meaning of it
        Assert.False(headers.ContainsKey("X-Forwarded-For"));
    }

    private static JsonObject Config(TestBackend backend, JsonObject? transform)
    {
        var config = ProxyConfigJson.Config([("api", "/api/{**rest}", "c1")], [("c1", "RoundRobin", [(backend, null)])]);
        if (transform is not null)
        {
            config["ReverseProxy"]!["Routes"]!["api"]!["Transforms"] = new JsonArray(transform);
        }

        return config;
    }

    private static async Task<Dictionary<string, string>> ForwardAsync(GatewayUnderTest gateway, TestBackend backend, string target)
    {
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        await socket.SendAsync(Encoding.ASCII.GetBytes($"GET {target} HTTP/1.1\r\nHost: gateway.example\r\nX-Forwarded-Prefix: /evil\r\nForwarded: for=6.6.6.6\r\n\r\n"));
        Assert.StartsWith("HTTP/1.1 200", await RawSocket.ReceiveResponseHeadAsync(socket), StringComparison.Ordinal);
        return Assert.Single(backend.RequestHeaders);
    }
}
