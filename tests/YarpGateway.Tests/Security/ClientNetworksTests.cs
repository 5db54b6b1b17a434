using System.Net;
using System.Text.Json.Nodes;
using YarpGateway.Security;
using YarpGateway.Telemetry;
using YarpGateway.Tests.Configuration;
using YarpGateway.Tests.Functional;
using YarpGateway.Tests.Telemetry;

namespace YarpGateway.Tests.Security;

/// <summary>A route's <c>AllowedNetworks</c>: nginx's <c>allow</c> and <c>deny all</c>, on the address the gateway trusts.</summary>
public class ClientNetworksTests
{
    [Theory]
    [InlineData("10.0.0.0/8", 1)]
    [InlineData(" 10.0.0.0/8 , 192.168.1.0/24 ", 2)]
    [InlineData("203.0.113.7", 1)]
    [InlineData("::1, 2001:db8::/32", 2)]
    public void NetworksAndAddresses_AreRead(string text, int count)
        => Assert.Equal(count, ClientNetworks.TryParse(text, out _)!.Length);

    [Theory]
    [InlineData("10.1.2.3/8", "10.1.2.3/8")] // host bits set: would let in all of 10.0.0.0/8
    [InlineData("10.0.0.0/33", "10.0.0.0/33")]
    [InlineData("10.0.0.0/8, office", "office")]
    [InlineData("1.2.3", "1.2.3")] // .NET reads it as 1.2.0.3
    [InlineData("", "")]
    [InlineData(" , ", " , ")]
    public void AnEntryThatIsNeither_IsNamed(string text, string bad)
    {
        Assert.Null(ClientNetworks.TryParse(text, out var named));
        Assert.Equal(bad, named);
    }

    [Theory]
    [InlineData("10.0.0.0/8", "10.1.2.3", true)]
    [InlineData("10.0.0.0/8", "::ffff:10.1.2.3", true)] // an IPv4 client on a dual-stack socket
    [InlineData("10.0.0.0/8", "11.0.0.1", false)]
    [InlineData("127.0.0.1", "::1", false)]
    [InlineData("::1", "::1", true)]
    public void AClientIsAllowed_OnlyFromItsNetworks(string networks, string client, bool allowed)
        => Assert.Equal(allowed, ClientNetworks.Allows(ClientNetworks.TryParse(networks, out _)!, IPAddress.Parse(client)));

    [Fact]
    public void AnUnknownClientAddress_IsAllowedNowhere()
        => Assert.False(ClientNetworks.Allows(ClientNetworks.TryParse("0.0.0.0/0, ::/0", out _)!, null));

    [Fact]
    public async Task ABadNetwork_IsAConfigurationError_NamingIt()
    {
        var errors = await GatewayConfigValidatorTests.ValidateAsync("""
        { "ReverseProxy": { "Routes": { "admin": { "ClusterId": "c", "Match": { "Path": "/admin" }, "Metadata": { "AllowedNetworks": "10.0.0.0/8, 192.168.1.1/24" } } },
          "Clusters": { "c": { "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);
        var error = Assert.Single(errors);
        Assert.Equal("ReverseProxy:Routes:admin:Metadata:AllowedNetworks", error.Key);
        Assert.StartsWith("'192.168.1.1/24' is not a network in CIDR notation with no host bits set", error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// From 127.0.0.1: a route open to loopback serves it, a route open to 10.0.0.0/8 answers 403 without a backend (its
    /// body read and dropped, the connection kept), counts and logs the refusal once, and the access log names the route;
    /// an edit that adds the address lets it in without a restart.
    /// </summary>
    [Fact]
    public async Task AClientOutsideARoutesNetworks_Gets403_BeforeABackend_AndAnEditLetsItIn()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.Config(
            [("inside", "/inside/{**rest}", "c1"), ("outside", "/outside/{**rest}", "c1"), ("open", "/open/{**rest}", "c1")],
            [("c1", "RoundRobin", [(backend, null)])]);
        config["ReverseProxy"]!["Routes"]!["inside"]!["Metadata"] = new JsonObject { ["AllowedNetworks"] = "127.0.0.0/8, ::1" };
        config["ReverseProxy"]!["Routes"]!["outside"]!["Metadata"] = new JsonObject { ["AllowedNetworks"] = "10.0.0.0/8" };
        config["Gateway"] = JsonNode.Parse("""{ "Telemetry": { "AccessLog": true } }""");
        var output = new AccessLogTests.CapturedOutput();
        await using var gateway = await GatewayUnderTest.StartAsync(config, services => AccessLogTests.CaptureAccessLog(services, output));
        using var client = gateway.CreateProxyClient();

        using (var inside = await client.GetAsync("/inside/x"))
        {
            Assert.Equal(HttpStatusCode.OK, inside.StatusCode);
        }

        using (var open = await client.GetAsync("/open/x"))
        {
            Assert.Equal(HttpStatusCode.OK, open.StatusCode);
        }

        for (var i = 0; i < 3; i++)
        {
            using var outside = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/outside/x") { Content = new ByteArrayContent(new byte[100_000]), Headers = { { "X-Request-ID", "refused-" + i } } });
            Assert.Equal(HttpStatusCode.Forbidden, outside.StatusCode);
            Assert.Equal("gateway: this route does not take requests from 127.0.0.1\n", await outside.Content.ReadAsStringAsync());
        }

        Assert.Equal(2, backend.Requests);
        Assert.Equal(3, gateway.CounterSum("gateway.auth.refused|route=outside|status=403|reason=network"));
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("[NetworkRefused] Refused with 403 on route 'outside' (request id refused-0): 127.0.0.1 is in none of its AllowedNetworks", StringComparison.Ordinal)); // the first refusal's line, with its id
        Assert.True(gateway.Logs.Lines.Count(l => l.Contains("[NetworkRefused]", StringComparison.Ordinal)) < 3, "a line per refusal"); // one a second
        Assert.True(await Eventually.TrueAsync(() => output.Lines.Count(l => l.Contains(" path=/outside/x ", StringComparison.Ordinal)) == 3, TimeSpan.FromSeconds(10)), string.Join("\n", output.Lines));
        Assert.All(output.Lines.Where(l => l.Contains(" path=/outside/x ", StringComparison.Ordinal)), l => Assert.Contains(" status=403 ms=", l, StringComparison.Ordinal));
        Assert.All(output.Lines.Where(l => l.Contains(" path=/outside/x ", StringComparison.Ordinal)), l => Assert.Contains(" route=outside cluster=- ", l, StringComparison.Ordinal));

        config["ReverseProxy"]!["Routes"]!["outside"]!["Metadata"] = new JsonObject { ["AllowedNetworks"] = "10.0.0.0/8, 127.0.0.1" };
        gateway.WriteConfig(config);
        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("[ConfigReloaded]", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)));
        using (var allowed = await client.GetAsync("/outside/x"))
        {
            Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        }
    }

    /// <summary>Behind a trusted proxy, the client's address is the one it forwards; a client's own claim is not believed.</summary>
    [Fact]
    public async Task BehindATrustedProxy_TheForwardedAddressIsTheOneChecked()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]!["Metadata"] = new JsonObject { ["AllowedNetworks"] = "10.0.0.0/8" };
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        async Task<HttpStatusCode> FromAsync(string? forwardedFor)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/x");
            if (forwardedFor is not null)
            {
                request.Headers.Add("X-Forwarded-For", forwardedFor);
            }

            using var response = await client.SendAsync(request);
            return response.StatusCode;
        }

        Assert.Equal(HttpStatusCode.Forbidden, await FromAsync("10.1.2.3")); // 127.0.0.1 is no trusted proxy yet: its claim is not believed

        config["Gateway"] = JsonNode.Parse("""{ "ForwardedHeaders": { "KnownProxies": [ "127.0.0.1" ] } }""");
        gateway.WriteConfig(config);
        Assert.True(await gateway.SectionReloadedAsync("Gateway:ForwardedHeaders"));

        Assert.Equal(HttpStatusCode.OK, await FromAsync("10.1.2.3"));
        Assert.Equal(HttpStatusCode.Forbidden, await FromAsync("192.0.2.1"));
        Assert.Equal(HttpStatusCode.Forbidden, await FromAsync(null)); // the proxy itself, 127.0.0.1
    }
}
