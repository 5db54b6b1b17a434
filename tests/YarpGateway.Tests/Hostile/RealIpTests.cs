using System.Net;
using System.Text.Json.Nodes;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Hostile;

/// <summary>
/// <c>X-Real-IP</c> is the client address the gateway determined, never what the client claims: frameworks that read
/// it before <c>X-Forwarded-For</c> took a client's <c>X-Real-IP: 6.6.6.6</c> as its address. Before, it passed through.
/// The other headers that claim a client address (<c>True-Client-IP</c> and the like) pass only from a trusted peer.
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
        Assert.Equal("198.51.100.8", headers["X-Forwarded-For"]);
        Assert.False(headers.ContainsKey("X-Original-For"), headers.GetValueOrDefault("X-Original-For")); // the trusted peer's address, ASP.NET Core's note
    }

    // Before: a load balancer that ends TLS in front of the gateway said https, and the backend was told http, the
    // gateway's own scheme; a backend that redirects plain HTTP to https then sent browsers round in a loop. From anyone
    // else the claim is the client's, and the backend is told the gateway's scheme.
    [Theory]
    [InlineData("""{ "KnownProxies": [ "127.0.0.1" ] }""", "https", "https")]
    [InlineData("""{ "KnownProxies": [ "127.0.0.1" ] }""", null, "http")]
    [InlineData("""{ "KnownProxies": [ "127.0.0.1" ] }""", "http, https", "https")]
    [InlineData("""{ "KnownProxies": [ "127.0.0.1" ] }""", "not a scheme", "http")]
    [InlineData("""{ "KnownNetworks": [ "10.0.0.0/8" ] }""", "https", "http")]
    [InlineData(null, "https", "http")]
    public async Task XForwardedProto_IsTakenFromATrustedProxyOnly(string? forwarded, string? proto, string expected)
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend, forwarded: forwarded));

        var headers = proto is null
            ? await SendAsync(gateway, backend, HttpVersion.Version11, ("X-Forwarded-For", "198.51.100.8"))
            : await SendAsync(gateway, backend, HttpVersion.Version11, ("X-Forwarded-For", "198.51.100.8"), ("X-Forwarded-Proto", proto));

        Assert.Equal(expected, headers["X-Forwarded-Proto"]);
        Assert.False(headers.ContainsKey("X-Original-Proto"), headers.GetValueOrDefault("X-Original-Proto"));
        Assert.Equal(forwarded?.Contains("127.0.0.1", StringComparison.Ordinal) == true ? "198.51.100.8" : "127.0.0.1", headers["X-Forwarded-For"]); // the client address as before
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

    // A CDN announces a new range: the operator adds it to KnownNetworks and saves; the next request from it is read as
    // forwarded, without a restart. A value that is not a network is rejected, and the last good list stays; removing
    // every trusted peer turns the forwarded-headers middleware off again.
    [Fact]
    public async Task TrustedPeers_Reload_ForTheNextRequest_AndABadValueKeepsTheLastGoodList()
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend, forwarded: """{ "KnownNetworks": [ "10.0.0.0/8" ] }"""));
        (string Name, string Value)[] sent = [("X-Forwarded-For", "198.51.100.8"), ("True-Client-IP", "6.6.6.6")];

        var headers = await SendAsync(gateway, backend, HttpVersion.Version11, sent);
        Assert.Equal("127.0.0.1", headers["X-Real-IP"]); // loopback not trusted at start
        Assert.False(headers.ContainsKey("True-Client-IP"));

        gateway.WriteConfig(Config(backend, forwarded: """{ "KnownNetworks": [ "10.0.0.0/8", "127.0.0.0/8" ] }"""));
        Assert.True(await Eventually.TrueAsync(async () => (await SendAsync(gateway, backend, HttpVersion.Version11, sent))["X-Real-IP"] == "198.51.100.8", TimeSpan.FromSeconds(10)),
            "the trusted network added was not applied");
        headers = backend.RequestHeaders.Last();
        Assert.Equal("198.51.100.8", headers["X-Forwarded-For"]);
        Assert.Equal("6.6.6.6", headers["True-Client-IP"]); // a trusted peer's claim passes
        Assert.False(headers.ContainsKey("X-Original-For"));
        Assert.True(gateway.Logs.Lines.Any(l => l.Contains("Gateway:ForwardedHeaders reloaded. Changed: KnownNetworks:1: added ('127.0.0.0/8').", StringComparison.Ordinal)),
            string.Join('\n', gateway.Logs.Lines.Where(l => l.Contains("ForwardedHeaders", StringComparison.Ordinal))));

        gateway.WriteConfig(Config(backend, forwarded: """{ "KnownNetworks": [ "10.0.0.0/8", "127.0.0.0/8", "not-a-network" ] }"""));
        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("[OptionsReloadRejected] Gateway:ForwardedHeaders reload rejected", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)),
            "the bad network was not rejected");
        Assert.Equal("198.51.100.8", (await SendAsync(gateway, backend, HttpVersion.Version11, sent))["X-Real-IP"]); // the last good list

        gateway.WriteConfig(Config(backend)); // nobody trusted: the forwarded-headers middleware off again
        Assert.True(await Eventually.TrueAsync(async () => (await SendAsync(gateway, backend, HttpVersion.Version11, sent))["X-Real-IP"] == "127.0.0.1", TimeSpan.FromSeconds(10)),
            "removing every trusted peer was not applied");
        Assert.False(backend.RequestHeaders.Last().ContainsKey("True-Client-IP"));
    }

    // The client's address, and the scheme and port it used (X-Forwarded-Port: a client's own went into the absolute URLs
    // backends build, and so into every cached copy of the page), and the URL a proxy in front rewrote from.
    private static readonly (string Name, string Value)[] Claims =
    [
        .. YarpGateway.ForwardedHeaders.ProxyClaims.ClientAddressHeaderNames.Select(name => (name, "6.6.6.6")),
        ("X-Forwarded-Port", "1"), ("X-Forwarded-Ssl", "on"), ("X-Forwarded-Scheme", "https"), ("X-Forwarded-Protocol", "ssl"), ("Front-End-Https", "on"),
        ("X-Original-URL", "/admin"), ("X-Rewrite-URL", "/admin"), ("X-Original-URI", "/admin"), ("X-Forwarded-Uri", "/admin"), // the URL a backend would serve instead
    ];

    [Theory]
    [InlineData("1.1", null)]
    [InlineData("2.0", null)]
    [InlineData("1.1", """{ "KnownProxies": [ "10.1.2.3" ] }""")]
    [InlineData("2.0", """{ "KnownNetworks": [ "10.0.0.0/8" ] }""")]
    public async Task ProxyClaims_FromAPeerNobodyTrusts_AreRemoved(string version, string? forwarded)
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend, forwarded: forwarded));

        var headers = await SendAsync(gateway, backend, Version.Parse(version), [.. Claims, ("X-Other", "kept")]);

        Assert.All(Claims, claim => Assert.False(headers.ContainsKey(claim.Name), claim.Name));
        Assert.Equal("kept", headers["X-Other"]);
    }

    [Theory]
    [InlineData("1.1", """{ "KnownProxies": [ "127.0.0.1" ] }""")]
    [InlineData("2.0", """{ "KnownNetworks": [ "127.0.0.0/8" ] }""")]
    public async Task ProxyClaims_FromATrustedPeer_PassUnchanged_EvenWhenItsXForwardedForNamesTheClient(string version, string forwarded)
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend, forwarded: forwarded));

        // The forwarded-headers middleware makes 198.51.100.8 the client address; the peer that vouches is still 127.0.0.1.
        var headers = await SendAsync(gateway, backend, Version.Parse(version), [.. Claims, ("X-Forwarded-For", "198.51.100.8")]);

        Assert.All(Claims, claim => Assert.Equal(claim.Value, headers.GetValueOrDefault(claim.Name)));
        Assert.Equal("198.51.100.8", headers["X-Real-IP"]);
    }

    [Fact]
    public async Task ARoutesOwnTransform_OnAnAddressClaim_StillSetsIt()
    {
        await using var backend = await TestBackend.StartAsync("b");
        var transform = JsonNode.Parse("""{ "RequestHeader": "True-Client-IP", "Set": "fixed" }""");
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend, new JsonArray(transform)));

        var headers = await SendAsync(gateway, backend, HttpVersion.Version11, Claims);

        Assert.Equal("fixed", headers["True-Client-IP"]);
        Assert.False(headers.ContainsKey("CF-Connecting-IP"));
    }

    [Theory]
    [InlineData("127.0.0.1", true)]
    [InlineData("::ffff:127.0.0.1", true)] // a dual-stack socket's IPv4 peer
    [InlineData("10.9.8.7", true)]
    [InlineData("::ffff:10.9.8.7", true)]
    [InlineData("127.0.0.2", false)]
    [InlineData("11.0.0.1", false)]
    [InlineData("::1", false)]
    public void ATrustedPeer_IsAKnownProxyOrInAKnownNetwork_InEitherAddressFamily(string peer, bool trusted)
    {
        var options = new Microsoft.AspNetCore.Builder.ForwardedHeadersOptions();
        options.KnownProxies.Clear();
        options.KnownIPNetworks.Clear();
        options.KnownProxies.Add(IPAddress.Parse("127.0.0.1"));
        options.KnownIPNetworks.Add(System.Net.IPNetwork.Parse("10.0.0.0/8"));

        Assert.Equal(trusted, YarpGateway.ForwardedHeaders.ProxyClaims.IsTrusted(options, IPAddress.Parse(peer)));
        Assert.False(YarpGateway.ForwardedHeaders.ProxyClaims.IsTrusted(null, IPAddress.Parse(peer))); // nobody trusted
    }
}
