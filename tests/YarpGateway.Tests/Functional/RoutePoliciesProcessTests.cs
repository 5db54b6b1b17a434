using System.Net;
using System.Text.Json.Nodes;

namespace YarpGateway.Tests.Functional;

/// <summary>
/// Route policies defined in the configuration file, served by the gateway as a process: what a native AOT build must do
/// as the JIT build does (<c>tests/aot/check.sh</c> runs this class against it). Such a build bound every <c>Policies</c>
/// map empty without a word, and refused the routes that named them.
/// </summary>
public class RoutePoliciesProcessTests
{
    [Fact]
    public async Task RateLimitAndCorsPolicies_FromTheFile_AreApplied()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["Gateway"] = JsonNode.Parse("""
            {
              "RateLimiting": { "Policies": { "one": { "Kind": "FixedWindow", "PermitLimit": 1, "Window": "00:10:00" } } },
              "Cors": { "Policies": { "web": { "Origins": [ "https://app.example" ] } } }
            }
            """);
        var route = config["ReverseProxy"]!["Routes"]!.AsObject().Single().Value!;
        route["RateLimiterPolicy"] = "one";
        route["CorsPolicy"] = "web";
        var configPath = ProxyConfigJson.WriteTemp("yarpgateway-policies-", config);
        using var gateway = GatewayProcess.StartOnLoopback(configPath);
        var (proxy, _) = await gateway.FindEndpointsAsync();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(15) };

        using var preflight = new HttpRequestMessage(HttpMethod.Options, new Uri(proxy, "/x"));
        preflight.Headers.Add("Origin", "https://app.example");
        preflight.Headers.Add("Access-Control-Request-Method", "GET");
        using (var answer = await http.SendAsync(preflight))
        {
            Assert.Equal(HttpStatusCode.NoContent, answer.StatusCode);
            Assert.Equal("https://app.example", answer.Headers.GetValues("Access-Control-Allow-Origin").Single());
        }

        using (var first = await http.GetAsync(new Uri(proxy, "/x")))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        using var second = await http.GetAsync(new Uri(proxy, "/x"));
        Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode);
    }
}
