using System.Net;
using YarpGateway.RequestFiltering;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Hostile;

/// <summary>
/// Windows' HTTP server (HTTP.sys, under IIS) reads a backslash in a path as <c>/</c>, sent as it is or as <c>%5C</c>:
/// before, <c>/public/..%5Cadmin/secret</c> was routed under <c>/public/</c> and sent on as it was, which such a backend
/// serves as <c>/admin/secret</c>, past the <c>/admin</c> route's policies. Such a path now gets 400; with
/// <c>BackslashesInPaths</c> a backslash passes, but not one that sets off a dot segment.
/// </summary>
public class BackslashPathTests
{
    [Theory]
    [InlineData("/public/..\\admin", false, AmbiguousPaths.BackslashRefusal)]
    [InlineData("/admin\\secret", false, AmbiguousPaths.BackslashRefusal)]
    [InlineData("/users/CORP\\jdoe", false, AmbiguousPaths.BackslashRefusal)]
    [InlineData("/users/CORP\\jdoe", true, null)]
    [InlineData("/files/a.\\b", true, null)] // "a." is a name
    [InlineData("/files/...\\b", true, null)] // three dots are a name too
    [InlineData("/public/..\\admin", true, AmbiguousPaths.BackslashDotSegmentRefusal)]
    [InlineData("/public/x\\..\\..\\admin", true, AmbiguousPaths.BackslashDotSegmentRefusal)]
    [InlineData("/public/.\\x", true, AmbiguousPaths.BackslashDotSegmentRefusal)]
    [InlineData("/public/x\\..", true, AmbiguousPaths.BackslashDotSegmentRefusal)]
    [InlineData("/public/x\\..;y\\admin", true, AmbiguousPaths.BackslashDotSegmentRefusal)]
    [InlineData("/public/..;/admin", true, DotSegmentParameters.Refusal)]
    [InlineData("/public/..;/admin", false, DotSegmentParameters.Refusal)]
    [InlineData("/files/a;v2.pdf", false, null)]
    [InlineData("/", false, null)]
    public void ThePath_IsRefused_OnlyWhenSomeServerReadsItAsAnother(string path, bool backslashesAllowed, string? refusal)
        => Assert.Equal(refusal, AmbiguousPaths.Refusal(path, backslashesAllowed));

    [Theory]
    [InlineData("/public/..\\admin/secret", HttpStatusCode.BadRequest)]
    [InlineData("/public/..%5Cadmin/secret", HttpStatusCode.BadRequest)]
    [InlineData("/public/%2e%2e%5cadmin/secret", HttpStatusCode.BadRequest)]
    [InlineData("/admin%5Csecret", HttpStatusCode.BadRequest)]
    [InlineData("/users/CORP%5Cjdoe", HttpStatusCode.BadRequest)]
    [InlineData("/public/a%2Fb", HttpStatusCode.OK)]
    public async Task OverHttp11_APathWithABackslash_Gets400_AndReachesNoBackend(string target, HttpStatusCode expected)
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)));

        var head = await RawSocket.GetHeadAsync(gateway.ProxyAddress, target);

        Assert.StartsWith($"HTTP/1.1 {(int)expected}", head, StringComparison.Ordinal);
        Assert.Equal(expected == HttpStatusCode.OK ? [target] : [], backend.RawTargets.ToArray());
    }

    [Theory]
    [InlineData("/users/CORP%5Cjdoe", HttpStatusCode.OK, "/users/CORP%5Cjdoe")]
    [InlineData("/users/CORP\\jdoe", HttpStatusCode.OK, "/users/CORP%5Cjdoe")]
    [InlineData("/public/..%5Cadmin/secret", HttpStatusCode.BadRequest, null)]
    [InlineData("/public/x\\..\\..\\admin", HttpStatusCode.BadRequest, null)]
    public async Task WithBackslashesInPaths_ABackslashPasses_ButNotOneThatSetsOffADotSegment(string target, HttpStatusCode expected, string? forwarded)
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(
            ProxyConfigJson.CatchAll("RoundRobin", (backend, null)), "--Gateway:RequestFiltering:BackslashesInPaths=true");

        var head = await RawSocket.GetHeadAsync(gateway.ProxyAddress, target);

        Assert.StartsWith($"HTTP/1.1 {(int)expected}", head, StringComparison.Ordinal);
        Assert.Equal(forwarded is null ? [] : [forwarded], backend.RawTargets.ToArray());
    }

    [Fact]
    public async Task OverHttp2_AnEscapedBackslash_Gets400()
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)));
        using var client = gateway.CreateHttp2ProxyClient();

        using var refused = await client.GetAsync("/public/..%5Cadmin/secret");
        using var served = await client.GetAsync("/public/x");

        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Equal(AmbiguousPaths.BackslashRefusal, await refused.Content.ReadAsStringAsync());
        Assert.Equal(AmbiguousPaths.BackslashRefusal.Length, refused.Content.Headers.ContentLength); // one answer with its length, as every answer of the gateway's own
        Assert.Equal("text/plain", refused.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal(["/public/x"], backend.RawTargets.ToArray());
    }
}
