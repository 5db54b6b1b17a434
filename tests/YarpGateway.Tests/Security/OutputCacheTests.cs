using System.Net;
using System.Text.Json.Nodes;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Security;

/// <summary>A route's output cache: repeated GETs served by the gateway; the backend's Cache-Control has the last word.</summary>
public class OutputCacheTests
{
    [Fact]
    public async Task RepeatedGets_ReachTheBackendOncePerQuery_ButAPrivateResponseIsNeverStored()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]!["OutputCachePolicy"] = "short";
        config["Gateway"] = JsonNode.Parse("""{ "OutputCache": { "Policies": { "short": { "Duration": "00:05:00" } } } }""");
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        foreach (var path in new[] { "/page", "/page", "/page?x=1", "/page?x=1", "/private", "/private" })
        {
            using var response = await client.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("a", await response.Content.ReadAsStringAsync());
        }

        Assert.Equal(4, backend.Requests); // /page once, /page?x=1 once, /private twice
    }
}
