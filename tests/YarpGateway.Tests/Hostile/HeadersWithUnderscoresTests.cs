using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Hostile;

/// <summary>
/// A client's <c>X_Forwarded_For</c> is not forwarded by default: backends that read headers the CGI way take it for
/// <c>X-Forwarded-For</c>, the header the gateway sets. Before, it reached the backend beside the gateway's.
/// </summary>
public class HeadersWithUnderscoresTests
{
    private static JsonObject Config(TestBackend backend, JsonArray? transforms = null)
    {
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        if (transforms is not null)
        {
            config["ReverseProxy"]!["Routes"]!["all"]!["Transforms"] = transforms;
        }

        return config;
    }

    private static HttpRequestMessage Request(Version version)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/x") { Version = version, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        request.Headers.TryAddWithoutValidation("X_Forwarded_For", "6.6.6.6");
        request.Headers.TryAddWithoutValidation("x_user", "admin");
        request.Headers.TryAddWithoutValidation("X-Kept", "yes");
        return request;
    }

    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task HeadersWithAnUnderscore_AreNotForwarded_TheOthersAre_AndALineSaysSo(string version)
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend));
        using var client = version == "2.0" ? gateway.CreateHttp2ProxyClient() : gateway.CreateProxyClient();

        using var response = await client.SendAsync(Request(Version.Parse(version)));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var headers = Assert.Single(backend.RequestHeaders);
        Assert.Equal("yes", headers["X-Kept"]);
        Assert.Equal("127.0.0.1", headers["X-Forwarded-For"]);
        Assert.DoesNotContain(headers.Keys, name => name.Contains('_'));
        var line = Assert.Single(gateway.Logs.Lines, l => l.Contains("[HeaderWithUnderscoreDropped]", StringComparison.Ordinal));
        Assert.Contains("route all", line, StringComparison.Ordinal);
        Assert.Contains("2 dropped", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheLine_ComesOnceAMinute_NotPerRequest()
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend));
        using var client = gateway.CreateProxyClient();

        for (var i = 0; i < 20; i++)
        {
            using var response = await client.SendAsync(Request(HttpVersion.Version11));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Equal(20, backend.RequestHeaders.Count(h => !h.Keys.Any(name => name.Contains('_'))));
        Assert.Single(gateway.Logs.Lines, l => l.Contains("[HeaderWithUnderscoreDropped]", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ARoutesOwnTransform_MaySetOne_AndTheClientsIsNotAddedToIt()
    {
        await using var backend = await TestBackend.StartAsync("b");
        var transforms = new JsonArray(
            new JsonObject { ["RequestHeader"] = "X_Internal", ["Append"] = "gateway" });
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend, transforms));
        using var client = gateway.CreateProxyClient();
        using var request = Request(HttpVersion.Version11);
        request.Headers.TryAddWithoutValidation("X_Internal", "client");

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var headers = Assert.Single(backend.RequestHeaders);
        Assert.Equal("gateway", headers["X_Internal"]);
        Assert.False(headers.ContainsKey("X_Forwarded_For"));
    }

    [Fact]
    public async Task WithUnderscoresInHeaders_TheyAreForwarded()
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend), "--Gateway:RequestFiltering:UnderscoresInHeaders=true");
        using var client = gateway.CreateProxyClient();

        using var response = await client.SendAsync(Request(HttpVersion.Version11));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var headers = Assert.Single(backend.RequestHeaders);
        Assert.Equal("6.6.6.6", headers["X_Forwarded_For"]);
        Assert.Equal("admin", headers["x_user"]);
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("[HeaderWithUnderscoreDropped]", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("true")]
    [InlineData("false")]
    public async Task AWebSocketUpgrade_DropsThemToo_WithEitherConnector(string lean)
    {
        await using var backend = await RawTcpBackend.StartAsync(async (socket, _) =>
            await socket.SendAsync(Encoding.ASCII.GetBytes("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")));
        var config = ProxyConfigJson.CatchAll("RoundRobin");
        config["ReverseProxy"]!["Clusters"]!["c1"]!["Destinations"] = new JsonObject { ["d"] = new JsonObject { ["Address"] = backend.Address.ToString() } };
        await using var gateway = await GatewayUnderTest.StartAsync(config, $"--Gateway:WebSockets:LeanBackendConnector={lean}");

        await using var client = await WebSockets.RawWebSocketClient.ConnectAsync(gateway.ProxyAddress, "/ws", extraHeaders: "X_Forwarded_For: 6.6.6.6\r\nX-Kept: yes\r\n");

        Assert.Equal(403, client.Status);
        var head = Assert.Single(backend.Heads);
        Assert.Contains("\r\nX-Kept: yes", head, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("X_Forwarded_For", head, StringComparison.OrdinalIgnoreCase);
    }
}
