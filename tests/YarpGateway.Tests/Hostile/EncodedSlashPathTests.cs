using System.Net;
using YarpGateway.RequestFiltering;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Hostile;

/// <summary>
/// Routing reads <c>%2F</c> as part of a segment: <c>/admin%2Fsecret</c> does not match <c>/admin/{**rest}</c>, a catch-all
/// takes it, and a backend that decodes it (nginx) serves <c>/admin/secret</c>. It passes by default (PathEncodingTests);
/// with <c>EncodedSlashesInPaths</c> false it gets 400.
/// </summary>
public class EncodedSlashPathTests
{
    [Theory]
    [InlineData("/admin%2Fsecret", "/admin%2Fsecret", AmbiguousPaths.EncodedSlashRefusal)]
    [InlineData("/admin%2fsecret", "/admin%2fsecret", AmbiguousPaths.EncodedSlashRefusal)]
    [InlineData("/admin%2Fsecret", "/admin%2Fsecret?x=1", AmbiguousPaths.EncodedSlashRefusal)]
    [InlineData("/a%2Fb", "/a%252Fb", null)] // a name with "%2F" in it: Kestrel decoded %25, the client sent no slash
    [InlineData("/a", "/a?x=%2F", null)] // the query is not the path
    [InlineData("/caf%E9", "/caf%E9", null)] // another escape Kestrel left
    public void AnEncodedSlash_IsRefused_WhenEncodedSlashesAreNotAllowed(string path, string rawTarget, string? refusal)
    {
        Assert.Equal(refusal, AmbiguousPaths.Refusal(path, backslashesAllowed: false, rawTarget));
        Assert.Null(AmbiguousPaths.Refusal(path, backslashesAllowed: false)); // allowed (the default): no raw target is looked at
    }

    [Theory]
    [InlineData("/admin%2Fsecret", HttpStatusCode.BadRequest)]
    [InlineData("/admin%2fsecret?x=1", HttpStatusCode.BadRequest)]
    [InlineData("/a%252Fb", HttpStatusCode.OK)]
    [InlineData("/a?x=%2F", HttpStatusCode.OK)]
    public async Task WithoutEncodedSlashesInPaths_APathWithOne_Gets400_AndReachesNoBackend(string target, HttpStatusCode expected)
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(
            ProxyConfigJson.CatchAll("RoundRobin", (backend, null)), "--Gateway:RequestFiltering:EncodedSlashesInPaths=false");

        var head = await RawSocket.GetHeadAsync(gateway.ProxyAddress, target);

        Assert.StartsWith($"HTTP/1.1 {(int)expected}", head, StringComparison.Ordinal);
        Assert.Equal(expected == HttpStatusCode.OK ? [target] : [], backend.RawTargets.ToArray());
    }

    [Fact]
    public async Task WithoutEncodedSlashesInPaths_OverHttp2_APathWithOne_Gets400()
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(
            ProxyConfigJson.CatchAll("RoundRobin", (backend, null)), "--Gateway:RequestFiltering:EncodedSlashesInPaths=false");
        using var client = gateway.CreateHttp2ProxyClient();

        using var refused = await client.GetAsync("/admin%2Fsecret");

        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Equal(AmbiguousPaths.EncodedSlashRefusal, await refused.Content.ReadAsStringAsync());
        Assert.Empty(backend.RawTargets);
    }
}
