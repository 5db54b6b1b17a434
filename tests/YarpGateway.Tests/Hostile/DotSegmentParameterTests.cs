using System.Net;
using YarpGateway.RequestFiltering;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Hostile;

/// <summary>
/// <c>/public/..;/admin</c> is <c>/admin</c> to Tomcat and Jetty, which strip a path parameter before they resolve dot
/// segments, while Kestrel resolves only <c>..</c>: before, the gateway routed such a request under <c>/public/</c>
/// and its backend served <c>/admin</c>, past the <c>/admin</c> route's policies. Such a segment now gets 400.
/// </summary>
public class DotSegmentParameterTests
{
    [Theory]
    [InlineData("/public/..;/admin", true)]
    [InlineData("/public/..;jsessionid=1/admin", true)]
    [InlineData("/public/.;/admin", true)]
    [InlineData("/public/..;", true)]
    [InlineData("/files/a;v2.pdf", false)]
    [InlineData("/cart;jsessionid=1", false)]
    [InlineData("/a/x..;/b", false)]
    [InlineData("/a/...;/b", false)] // three dots are a name, not a dot segment
    [InlineData("/a/../b", false)] // Kestrel has resolved these before any middleware runs
    [InlineData("/", false)]
    [InlineData(null, false)]
    public void ADotSegmentWithAParameter_IsFound_OtherParametersAreNot(string? path, bool found)
        => Assert.Equal(found, DotSegmentParameters.IsDotSegmentWithParameter(path));

    [Theory]
    [InlineData("/public/..;/admin/secret", HttpStatusCode.BadRequest)]
    [InlineData("/public/%2e%2e;/admin/secret", HttpStatusCode.BadRequest)]
    [InlineData("/public/%2E.;x=1/admin/secret", HttpStatusCode.BadRequest)]
    [InlineData("/public/.;/secret", HttpStatusCode.BadRequest)]
    [InlineData("/public/a;v2.pdf", HttpStatusCode.OK)]
    [InlineData("/public/report;jsessionid=1", HttpStatusCode.OK)]
    public async Task OverHttp11_ADotSegmentWithAParameter_Gets400_AndReachesNoBackend(string target, HttpStatusCode expected)
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)));

        var head = await RawSocket.GetHeadAsync(gateway.ProxyAddress, target);

        Assert.StartsWith($"HTTP/1.1 {(int)expected}", head, StringComparison.Ordinal);
        Assert.Equal(expected == HttpStatusCode.OK ? [target] : [], backend.RawTargets.ToArray());
    }

    [Fact]
    public async Task OverHttp2_ADotSegmentWithAParameter_Gets400()
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)));
        using var client = gateway.CreateHttp2ProxyClient();

        using var refused = await client.GetAsync("/public/..;/admin");
        using var served = await client.GetAsync("/public/a;v2.pdf");

        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal(["/public/a;v2.pdf"], backend.RawTargets.ToArray());
    }
}
