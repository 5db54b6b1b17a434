using System.Net;
using System.Text.Json.Nodes;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Security;

/// <summary>CORS answered by the gateway: preflights never reach a backend; a foreign origin gets no Access-Control-Allow-* header.</summary>
public class CorsTests
{
    private const string App = "https://app.example.com";

    private static async Task<GatewayUnderTest> StartAsync(TestBackend backend, TestTokens tokens)
    {
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        var route = config["ReverseProxy"]!["Routes"]!["all"]!;
        route["CorsPolicy"] = "web";
        route["AuthorizationPolicy"] = "Default";
        config["Authentication"] = tokens.Section();
        config["Gateway"] = JsonNode.Parse($$"""
        { "Cors": { "Policies": { "web": { "Origins": [ "{{App}}" ], "Methods": [ "GET", "POST" ], "Headers": [ "Authorization", "Content-Type" ],
                                           "ExposedHeaders": [ "X-Request-Id" ], "MaxAge": "00:10:00" } } } }
        """);
        return await GatewayUnderTest.StartAsync(config);
    }

    private static HttpRequestMessage Preflight(string origin, string method) => new(HttpMethod.Options, "/x")
    {
        Headers =
        {
            { "Origin", origin },
            { "Access-Control-Request-Method", method },
            { "Access-Control-Request-Headers", "authorization" },
        },
    };

    [Fact]
    public async Task APreflight_IsAnsweredByTheGateway_AllowedForTheOrigin_WithoutAToken()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, new TestTokens());
        using var client = gateway.CreateProxyClient();

        using var response = await client.SendAsync(Preflight(App, "POST"));

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal(App, Assert.Single(response.Headers.GetValues("Access-Control-Allow-Origin")));
        Assert.Contains("POST", string.Join(",", response.Headers.GetValues("Access-Control-Allow-Methods")), StringComparison.Ordinal);
        Assert.Equal("600", Assert.Single(response.Headers.GetValues("Access-Control-Max-Age")));
        Assert.Equal(0, backend.Requests);
    }

    [Theory]
    [InlineData("https://evil.example.com", "POST")]
    [InlineData(App, "DELETE")]
    public async Task APreflight_ForAForeignOriginOrMethod_GetsNoAllowHeaders(string origin, string method)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, new TestTokens());
        using var client = gateway.CreateProxyClient();

        using var response = await client.SendAsync(Preflight(origin, method));

        if (origin != App)
        {
            Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"));
        }
        else
        {
            // ASP.NET Core lists what is allowed; the browser refuses a method not listed.
            var methods = response.Headers.TryGetValues("Access-Control-Allow-Methods", out var values) ? string.Join(",", values) : string.Empty;
            Assert.DoesNotContain(method, methods, StringComparison.OrdinalIgnoreCase);
        }

        Assert.Equal(0, backend.Requests);
    }

    [Fact]
    public async Task AnActualRequest_CarriesTheAllowHeaders_OnlyForAnAllowedOrigin()
    {
        var tokens = new TestTokens();
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, tokens);
        using var client = gateway.CreateProxyClient();

        foreach (var (origin, allowed) in new[] { (App, true), ("https://evil.example.com", false) })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/x") { Headers = { { "Origin", origin } } };
            request.Headers.Authorization = new("Bearer", tokens.Mint());
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(allowed, response.Headers.Contains("Access-Control-Allow-Origin"));
            if (allowed)
            {
                Assert.Equal("X-Request-Id", Assert.Single(response.Headers.GetValues("Access-Control-Expose-Headers")));
            }
        }
    }

    [Fact]
    public async Task APolicyNamedDefault_IsWhatARoutesDefaultUses()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]!["CorsPolicy"] = "Default";
        config["Gateway"] = JsonNode.Parse("""{ "Cors": { "Policies": { "Default": { "Origins": [ "*" ] } } } }""");
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        using var response = await client.SendAsync(Preflight("https://anywhere.example.com", "GET"));

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal("*", Assert.Single(response.Headers.GetValues("Access-Control-Allow-Origin")));
    }
}
