using System.Text.Json.Nodes;
using YarpGateway.RequestFiltering;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Hostile;

/// <summary>
/// A path a route's transform changed reached the backend with YARP's escaping of the decoded path: /api/a%3Bv2.pdf
/// through PathRemovePrefix /api came out as /a;v2.pdf (a path parameter to Tomcat and Jetty), %2B as +, %40 as @, and
/// with a %25 anywhere every escape Kestrel left was escaped again. The part of the path that is still the client's now
/// keeps the client's escapes, as a path no transform changed does.
/// </summary>
public class TransformedPathEscapesTests
{
    [Theory]
    [InlineData("/api/a%3Bv2.pdf", "/a%3Bv2.pdf")]
    [InlineData("/api/a%2Bb%40c%3Dd", "/a%2Bb%40c%3Dd")]
    [InlineData("/api/a%2Fb", "/a%2Fb")]
    [InlineData("/api/100%25/a%3Bb", "/100%25/a%3Bb")]
    [InlineData("/api/caf%C3%A9/%F0%9F%98%80", "/caf%C3%A9/%F0%9F%98%80")]
    [InlineData("/api/caf%e9", "/caf%e9")]
    [InlineData("/%61pi/x%3By", "/x%3By")]
    [InlineData("/api/plain?q=a%3Bb", "/plain?q=a%3Bb")]
    public async Task PathRemovePrefix_KeepsTheClientsEscapes(string target, string forwarded)
        => Assert.Equal([forwarded], await ForwardAsync(new JsonObject { ["PathRemovePrefix"] = "/api" }, target));

    [Theory]
    [InlineData("PathPrefix", "/v;1", "/api/a%3Bb", "/v;1/api/a%3Bb")]
    [InlineData("PathPattern", "/v2/{**rest}", "/api/a%3Bb/c%2Bd", "/v2/a%3Bb/c%2Bd")]
    [InlineData("PathSet", "/fixed/a;b", "/api/x/a%3Bb", "/fixed/a;b")] // the operator's path, as written
    public async Task OtherPathTransforms_KeepTheClientsEscapesInTheClientsPart(string transform, string value, string target, string forwarded)
        => Assert.Equal([forwarded], await ForwardAsync(new JsonObject { [transform] = value }, target));

    // A dot segment is resolved by Kestrel before routing: the raw path no longer lines up with the decoded one, and
    // YARP's escaping is kept (as for a path no transform changed).
    [Fact]
    public async Task ADotSegment_KeepsYarpsEscaping()
        => Assert.Equal(["/b;c"], await ForwardAsync(new JsonObject { ["PathRemovePrefix"] = "/api" }, "/api/a/../b%3Bc"));

    [Theory]
    [InlineData("/x", "/api/x", "/api/x", "/x")]
    [InlineData("/a;b", "/api/a;b", "/api/a%3Bb", "/a%3Bb")]
    [InlineData("/v1/api/a;b", "/api/a;b", "/api/a%3Bb", "/v1/api/a%3Bb")]
    [InlineData("/v 1/a;b", "/api/a;b", "/api/a%3bb", "/v%201/a%3bb")]
    [InlineData("/100%/a", "/api/100%/a", "/api/100%25/a", "/100%25/a")]
    [InlineData("/a%2Fb", "/api/a%2Fb", "/api/a%2Fb", "/a%2Fb")]
    [InlineData("/a%2Fb", "/api/a%2Fb", "/api/a%252Fb", "/a%252Fb")]
    [InlineData("/caf%E9", "/api/caf%E9", "/api/caf%E9", "/caf%E9")]
    [InlineData("/😀", "/api/😀", "/api/%F0%9F%98%80", "/%F0%9F%98%80")]
    [InlineData("/x", "//api//x", "//api//x", "/x")]
    public void Restore_WritesTheSharedTailAsSent(string path, string sent, string rawSent, string expected)
        => Assert.Equal(expected, EscapesAsSent.Restore(path, sent, rawSent));

    [Theory]
    [InlineData("/fixed", "/api/x")]           // nothing shared
    [InlineData("/ab;c", "/x;c")]              // shared, but not a whole segment
    [InlineData("", "/api")]                   // PathRemovePrefix of the whole path
    [InlineData("/a;b", "/api/a;b")]           // the raw form does not match the decoded one (see rawSent)
    public void Restore_GivesNothing_WhenNoWholeSegmentIsShared_OrTheFormsDoNotLineUp(string path, string sent)
        => Assert.Null(EscapesAsSent.Restore(path, sent, sent == "/api/a;b" ? "/api/a%3Ab" : sent));

    [Theory]
    [InlineData("/a%3Bb", 2, 2)]
    [InlineData("/a%3Bb", 3, 5)]
    [InlineData("/%F0%9F%98%80x", 3, 13)]
    [InlineData("/%F0%9F%98%80x", 2, -1)]      // inside a surrogate pair
    [InlineData("/a%3Bb", 9, -1)]              // past the end
    [InlineData("/a%3Bbc", 2, -1)]             // the raw text goes on past the decoded one
    public void RawIndexOf_FindsEachDecodedCharactersRawText(string raw, int index, int expected)
    {
        var sent = raw == "/%F0%9F%98%80x" ? "/😀x" : "/a;b";
        Assert.Equal(expected, EscapesAsSent.RawIndexOf(sent, raw, index));
    }

    private static async Task<string[]> ForwardAsync(JsonObject transform, string target)
    {
        await using var backend = await TestBackend.StartAsync("api");
        var config = ProxyConfigJson.Config([("api", "/api/{**rest}", "c1")], [("c1", "RoundRobin", [(backend, null)])]);
        config["ReverseProxy"]!["Routes"]!["api"]!["Transforms"] = new JsonArray(transform);
        await using var gateway = await GatewayUnderTest.StartAsync(config);

        var head = await RawSocket.GetHeadAsync(gateway.ProxyAddress, target);

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        return backend.RawTargets.ToArray();
    }
}
