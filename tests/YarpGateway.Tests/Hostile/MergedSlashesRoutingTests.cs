using System.Net;
using YarpGateway.RequestFiltering;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Hostile;

/// <summary>
/// <c>//admin/x</c> did not match a route <c>/admin/{**rest}</c> and went to a catch-all beside it, without the admin
/// route's policies, while a backend that merges slashes (nginx) served it as <c>/admin/x</c>. Routing now reads runs of
/// slashes as one, as nginx does; the backend still gets the path as sent.
/// </summary>
public class MergedSlashesRoutingTests
{
    [Theory]
    [InlineData("//admin/x", "/admin/x")]
    [InlineData("/a//b///c/", "/a/b/c/")]
    [InlineData("//", "/")]
    [InlineData("/thumb/http://example.com/a.png", "/thumb/http:/example.com/a.png")]
    public void RunsOfSlashes_AreMerged(string path, string merged) => Assert.Equal(merged, RoutedWithMergedSlashes.Merge(path));

    [Theory]
    [InlineData("//admin/x", "admin")]
    [InlineData("///admin//x", "admin")]
    [InlineData("/admin/x", "admin")]
    [InlineData("/other//admin/x", "site")]
    [InlineData("/thumb/http://example.com/a.png", "site")]
    public async Task APathWithRunsOfSlashes_TakesTheRouteItsMergedPathMatches_AndGoesOnAsSent(string target, string backendName)
    {
        await using var admin = await TestBackend.StartAsync("admin");
        await using var site = await TestBackend.StartAsync("site");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.AdminRouteBesideACatchAll(admin, site));

        var head = await RawSocket.GetHeadAsync(gateway.ProxyAddress, target);

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        var reached = backendName == "admin" ? admin : site;
        var missed = backendName == "admin" ? site : admin;
        Assert.Equal([target], reached.RawTargets.ToArray());
        Assert.Empty(missed.RawTargets);
    }

    [Fact]
    public async Task OverHttp2_ADoubleSlash_TakesTheAdminRoute()
    {
        await using var admin = await TestBackend.StartAsync("admin");
        await using var site = await TestBackend.StartAsync("site");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.AdminRouteBesideACatchAll(admin, site));
        using var client = gateway.CreateHttp2ProxyClient();

        using var response = await client.GetAsync(new Uri(gateway.ProxyAddress.GetLeftPart(UriPartial.Authority) + "//admin/x"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["//admin/x"], admin.RawTargets.ToArray());
        Assert.Empty(site.RawTargets);
    }

    // A route's path transforms compute the backend's path from the one routing matched, merged, as nginx's proxy_pass
    // with a URI does: //api/x took the /api route, and PathRemovePrefix /api sent it on as //api/x, unchanged.
    [Theory]
    [InlineData("PathPattern", "/v2/{**rest}", "/api//a//b", "/v2/a/b")]
    [InlineData("PathRemovePrefix", "/api", "/api//a", "/a")]
    [InlineData("PathRemovePrefix", "/api", "//api/x", "/x")]
    [InlineData("PathRemovePrefix", "/api", "///api//x/", "/x/")]
    [InlineData("PathRemovePrefix", "/api", "//api/a%3Bb?q=1//", "/a%3Bb?q=1//")]
    [InlineData("PathPrefix", "/v1", "//api/x", "/v1/api/x")]
    [InlineData("PathSet", "/fixed", "//api/x", "/fixed")]
    public async Task ARoutesPathTransforms_ComputeFromTheMergedPath(string transform, string value, string target, string forwarded)
    {
        await using var backend = await TestBackend.StartAsync("api");
        var config = ProxyConfigJson.Config([("api", "/api/{**rest}", "c1")], [("c1", "RoundRobin", [(backend, null)])]);
        config["ReverseProxy"]!["Routes"]!["api"]!["Transforms"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonObject { [transform] = value });
        await using var gateway = await GatewayUnderTest.StartAsync(config);

        var head = await RawSocket.GetHeadAsync(gateway.ProxyAddress, target);

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.Equal([forwarded], backend.RawTargets.ToArray());
    }
}
