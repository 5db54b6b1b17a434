using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using YarpGateway.RequestFiltering;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Hostile;

/// <summary>
/// A method override on a route that lists its methods: a backend that honours one on a POST (here ASP.NET Core's own
/// <c>UseHttpMethodOverride</c>) ran a DELETE that came through the route open to GET and POST, past the token the DELETE
/// route requires.
/// </summary>
public class MethodOverrideTests
{
    [Theory]
    [InlineData("X-HTTP-Method-Override", "DELETE", "DELETE")]
    [InlineData("X-HTTP-Method", " put ", "put")]
    [InlineData("X-Method-Override", "PATCH", "PATCH")]
    public void TheOverriddenMethod_IsRead(string header, string value, string method)
        => Assert.Equal(method, RequestFilter.MethodOverride(new HeaderDictionary { [header] = value }));

    [Fact]
    public void NoOverride_IsNull() => Assert.Null(RequestFilter.MethodOverride(new HeaderDictionary { ["X-Other"] = "DELETE" }));

    [Fact]
    public async Task AnOverrideToAMethodTheRouteDoesNotTake_Gets405_AndNeverReachesTheBackend()
    {
        var seen = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var backend = await StartOverridingBackendAsync(seen);
        var tokens = new YarpGateway.Tests.Security.TestTokens();
        var config = ProxyConfigJson.CatchAll(backend.Address());
        var routes = config["ReverseProxy"]!["Routes"]!.AsObject();
        routes.Remove("all");
        routes["read"] = JsonNode.Parse("""{ "ClusterId": "c1", "Match": { "Path": "/items/{**rest}", "Methods": [ "GET", "POST" ] } }""");
        routes["write"] = JsonNode.Parse("""{ "ClusterId": "c1", "AuthorizationPolicy": "Default", "Match": { "Path": "/items/{**rest}", "Methods": [ "PUT", "DELETE" ] } }""");
        routes["open"] = JsonNode.Parse("""{ "ClusterId": "c1", "Match": { "Path": "/open/{**rest}" } }""");
        config["Authentication"] = tokens.Section();
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        using (var direct = await client.DeleteAsync("/items/1"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, direct.StatusCode); // the write route wants a token
        }

        using (var request = new HttpRequestMessage(HttpMethod.Post, "/items/1") { Content = new StringContent("") })
        {
            request.Headers.Add("X-HTTP-Method-Override", "DELETE");
            using var smuggled = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.MethodNotAllowed, smuggled.StatusCode); // it was 200: the backend ran DELETE /items/1
            Assert.Equal(["GET", "POST"], smuggled.Content.Headers.Allow.Order());
            Assert.StartsWith("gateway: a method override to DELETE", await smuggled.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using (var request = new HttpRequestMessage(HttpMethod.Post, "/items/1") { Content = new StringContent("") })
        {
            request.Headers.Add("X-HTTP-Method-Override", "get"); // a method the route takes passes
            using var allowed = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        }

        using (var request = new HttpRequestMessage(HttpMethod.Post, "/open/1") { Content = new StringContent("") })
        {
            request.Headers.Add("X-HTTP-Method-Override", "DELETE"); // a route that lists no methods takes them all
            using var open = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, open.StatusCode);
        }

        Assert.Equal(["get /items/1", "DELETE /open/1"], seen.ToArray());
    }

    private static async Task<WebApplication> StartOverridingBackendAsync(System.Collections.Concurrent.ConcurrentQueue<string> seen)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.UseHttpMethodOverride();
        app.Run(context =>
        {
            seen.Enqueue($"{context.Request.Method} {context.Request.Path}");
            return Task.CompletedTask;
        });
        await app.StartAsync();
        return app;
    }
}

file static class BackendAddress
{
    public static Uri Address(this WebApplication app)
        => new(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
}
