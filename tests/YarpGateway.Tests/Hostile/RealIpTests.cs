using System.Net;
using System.Text.Json.Nodes;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Hostile;

/// <summary>
/// <c>X-Real-IP</c> is the client address the gateway determined, never what the client claims: frameworks that read
/// it before <c>X-Forwarded-For</c> took a client's <c>X-Real-IP: 6.6.6.6</c> as its address. Before, it passed through.
/// </summary>
public class RealIpTests
{
    private static JsonObject Config(TestBackend backend, JsonArray? transforms = null, string? forwarded = null)
    {
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        if (transforms is not null)
        {
            config["ReverseProxy"]!["Routes"]!["all"]!["Transforms"] = transforms;
        }

        if (forwarded is not null)
        {
            config["Gateway"] = new JsonObject { ["ForwardedHeaders"] = JsonNode.Parse(forwarded) };
        }

        return config;
    }

    private static async Task<Dictionary<string, string>> SendAsync(GatewayUnderTest gateway, TestBackend backend, Version version, params (string Name, string Value)[] headers)
    {
        using var client = version == HttpVersion.Version20 ? gateway.CreateHttp2ProxyClient() : gateway.CreateProxyClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/x") { Version = version, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return backend.RequestHeaders.Last();
    }

    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task TheClientsXRealIp_IsReplacedByItsAddress(string version)
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend));

        var headers = await SendAsync(gateway, backend, Version.Parse(version), ("X-Real-IP", "6.6.6.6"));

        Assert.Equal("127.0.0.1", headers["X-Real-IP"]);
        Assert.Equal("127.0.0.1", headers["X-Forwarded-For"]);
    }

    [Fact]
    public async Task FromATrustedProxy_ItIsTheForwardedAddress()
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend, forwarded: """{ "KnownProxies": [ "127.0.0.1" ] }"""));

        var headers = await SendAsync(gateway, backend, HttpVersion.Version11, ("X-Forwarded-For", "spoofed, 198.51.100.8"), ("X-Real-IP", "6.6.6.6"));

        Assert.Equal("198.51.100.8", headers["X-Real-IP"]);
    }

    [Theory]
    [InlineData("""{ "X-Forwarded": "Off" }""", null)]
    [InlineData("""{ "X-Forwarded": "Remove" }""", null)]
    [InlineData("""{ "X-Forwarded": "Set", "For": "Remove" }""", null)]
    [InlineData("""{ "Forwarded": "for,proto" }""", null)]
    [InlineData("""{ "X-Forwarded": "Append" }""", "127.0.0.1")]
    [InlineData("""{ "X-Forwarded": "Off", "For": "Set" }""", "127.0.0.1")]
    [InlineData("""{ "RequestHeaderRemove": "X-Real-IP" }""", null)]
    [InlineData("""{ "RequestHeader": "X-Real-IP", "Set": "fixed" }""", "fixed")]
    public async Task ARoutesOwnTransforms_Decide(string transform, string? expected)
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend, new JsonArray(JsonNode.Parse(transform))));

        var headers = await SendAsync(gateway, backend, HttpVersion.Version11, ("X-Real-IP", "6.6.6.6"));

        Assert.Equal(expected, headers.GetValueOrDefault("X-Real-IP"));
    }
}
