using System.Net;
using YarpGateway.RequestFiltering;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Hostile;

/// <summary>
/// Routing reads <c>/admin;x=1/secret</c>'s first segment as <c>admin;x=1</c>: a route <c>/admin/{**rest}</c> does not match
/// it, a catch-all beside it takes it, and Tomcat or Jetty behind the catch-all strip the parameter and serve
/// <c>/admin/secret</c>. It passes by default, as through nginx (<c>;jsessionid=</c>); with <c>SemicolonsInPaths</c>
/// false it gets 400.
/// </summary>
public class SemicolonPathTests
{
    [Theory]
    [InlineData("/admin;x=1/secret", AmbiguousPaths.SemicolonRefusal)]
    [InlineData("/app/page;jsessionid=ABC", AmbiguousPaths.SemicolonRefusal)]
    [InlineData("/files/a;v2.pdf", AmbiguousPaths.SemicolonRefusal)] // sent as a%3Bv2.pdf: Kestrel decodes it
    [InlineData("/public/..;/admin", DotSegmentParameters.Refusal)] // refused either way, with its own reason
    [InlineData("/admin/secret", null)]
    public void ASemicolon_IsRefused_WhenSemicolonsAreNotAllowed(string path, string? refusal)
    {
        Assert.Equal(refusal, AmbiguousPaths.Refusal(path, backslashesAllowed: false, semicolonsAllowed: false));
        Assert.Equal(refusal == AmbiguousPaths.SemicolonRefusal ? null : refusal, AmbiguousPaths.Refusal(path, backslashesAllowed: false)); // allowed: the default
    }

    [Theory]
    [InlineData("/admin;x=1/secret")]
    [InlineData("/app;jsessionid=ABC")]
    public async Task ByDefault_APathParameter_GoesOnAsSent_ToTheRouteRoutingMatches(string target)
    {
        await using var admin = await TestBackend.StartAsync("admin");
        await using var site = await TestBackend.StartAsync("site");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.AdminRouteBesideACatchAll(admin, site));

        var head = await RawSocket.GetHeadAsync(gateway.ProxyAddress, target);

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.Equal([target], site.RawTargets.ToArray()); // the catch-all's, which is why an operator with Tomcat behind it sets the option
        Assert.Empty(admin.RawTargets);
    }

    [Theory]
    [InlineData("/admin;x=1/secret", HttpStatusCode.BadRequest)]
    [InlineData("/files/a%3Bv2.pdf", HttpStatusCode.BadRequest)]
    [InlineData("/admin/secret?x=a;b", HttpStatusCode.OK)] // the query is not the path
    [InlineData("/admin/secret", HttpStatusCode.OK)]
    public async Task WithoutSemicolonsInPaths_APathWithOne_Gets400_AndReachesNoBackend(string target, HttpStatusCode expected)
    {
        await using var admin = await TestBackend.StartAsync("admin");
        await using var site = await TestBackend.StartAsync("site");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.AdminRouteBesideACatchAll(admin, site), "--Gateway:RequestFiltering:SemicolonsInPaths=false");

        var head = await RawSocket.GetHeadAsync(gateway.ProxyAddress, target);

        Assert.StartsWith($"HTTP/1.1 {(int)expected}", head, StringComparison.Ordinal);
        Assert.Equal(expected == HttpStatusCode.OK ? [target] : [], admin.RawTargets.ToArray());
        Assert.Empty(site.RawTargets);
    }

    [Fact]
    public async Task WithoutSemicolonsInPaths_OverHttp2_APathWithOne_Gets400()
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(
            ProxyConfigJson.CatchAll("RoundRobin", (backend, null)), "--Gateway:RequestFiltering:SemicolonsInPaths=false");
        using var client = gateway.CreateHttp2ProxyClient();

        using var refused = await client.GetAsync("/admin;x=1/secret");

        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Equal(AmbiguousPaths.SemicolonRefusal, await refused.Content.ReadAsStringAsync());
        Assert.Empty(backend.RawTargets);
    }
}
