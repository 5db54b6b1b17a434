using System.Net;
using System.Text.Json.Nodes;
using YarpGateway.Configuration;
using YarpGateway.Tests.Configuration;

namespace YarpGateway.Tests.Functional;

/// <summary>Route policies this gateway does not serve yet fail at start, instead of with a 500 on every request.</summary>
public class RoutePolicyTests
{
    [Theory]
    [InlineData("AuthorizationPolicy", "Default")]
    [InlineData("CorsPolicy", "Disable")]
    public async Task ARoutePolicyTheGatewayCannotEnforce_IsAConfigError_NotA500PerRequest(string field, string value)
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]![field] = value;

        var errors = await GatewayConfigValidatorTests.ValidateAsync(config.ToJsonString());

        var error = Assert.Single(errors);
        Assert.Equal($"ReverseProxy:Routes:all:{field}", error.Key);
        Assert.Contains("not enforced by this gateway yet", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnonymousAuthorization_StillServes()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]!["AuthorizationPolicy"] = "Anonymous";
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        using var response = await client.GetAsync("/x");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
