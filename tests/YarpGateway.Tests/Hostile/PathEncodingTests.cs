using YarpGateway.RequestFiltering;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Hostile;

/// <summary>What the backend receives for paths with encoded characters.</summary>
public class PathEncodingTests
{
    public static TheoryData<string, string> Paths => new()
    {
        { "/a%2Fb", "/a%2Fb" },                 // an encoded slash stays one (it used to arrive as %252F)
        { "/a%2fb?x=%2F", "/a%2fb?x=%2F" },     // either case, as sent; the query is passed as sent
        { "/a%20b", "/a%20b" },
        { "/a%252Fb", "/a%252Fb" },             // a literal "%2F" in the name stays escaped
        { "/a/../b", "/b" },                    // dot segments resolved before routing, as Kestrel does
        { "/caf%E9", "/caf%E9" },               // a Latin-1 byte, not UTF-8: Kestrel leaves it escaped (it used to arrive as %25E9)
        { "/a%FF/b%FE", "/a%FF/b%FE" },
        { "/a%E2%82", "/a%E2%82" },             // a UTF-8 sequence cut short
        { "/a%zz", "/a%25zz" },                 // a malformed escape is the literal characters Kestrel read (nginx answers 400)
        { "/a%", "/a%25" },
        { "/caf%C3%A9", "/caf%C3%A9" },         // UTF-8: decoded for routing, escaped again the same
        { "/a%FF?x=%25&y=%FF", "/a%FF?x=%25&y=%FF" }, // the query is passed as sent
        { "/a%2Fb?x=%252F", "/a%2Fb?x=%252F" }, // and not unescaped with the path (it was, to ?x=%2F)
        { "/a%FF%252F", "/a%FF%252F" },         // with %25 too: as sent, since no transform changed the path (below for one that does)
        { "/files/a%3Bv2.pdf", "/files/a%3Bv2.pdf" }, // a reserved character's escape is not the character (it arrived as ';')
        { "/a%2Bb%3Dc%40d%2C", "/a%2Bb%3Dc%40d%2C" },
        { "/a%41%7e", "/aA~" },                 // escapes of unreserved characters are the characters (RFC 3986 2.3; Uri decodes them)
        { "/.well-known/a%3B", "/.well-known/a%3B" }, // a dot that is no dot segment
        { "/a/%2e%2e/b%3B", "/b;" },            // dot segments resolved: the path is Kestrel's, escaped again by YARP
        { "/a%20#x", "/a%20%23x" },             // a raw '#' is part of the path Kestrel routed on, not a fragment to drop
        { "http://x/files/a%3Bv2.pdf", "/files/a%3Bv2.pdf" }, // absolute form (RFC 9112 3.2.2): the same (it arrived as ';')
        { "http://x/a%2Fb?q=%3B", "/a%2Fb?q=%3B" },
        { "http://x", "/" },
    };

    [Theory]
    [InlineData("http://x/a%3Bb", "/a%3Bb")]
    [InlineData("https://user@x:8080/a/b", "/a/b")]
    [InlineData("http://x", "")]
    [InlineData("/a", "/a")]
    [InlineData("/a/http://b/c", "/a/http://b/c")]
    public void OriginForm_IsThePathOfAnAbsoluteTarget(string target, string path)
        => Assert.Equal(path, PathAsSentTransformProvider.OriginForm(target).ToString());

    // A backslash gets 400 unless Gateway:RequestFiltering:BackslashesInPaths (BackslashPathTests); with it, these.
    public static TheoryData<string, string> PathsWithBackslashes => new()
    {
        { "/a%5Cb%3B", "/a%5Cb%3B" },
        { "/a\\b%3B", "/a%5Cb;" },              // a raw backslash: Uri would make it a slash, so the path is YARP's
    };

    [Theory]
    [MemberData(nameof(Paths))]
    public Task ThePathReachesTheBackendAsExpected(string sent, string received) => ReachesTheBackendAsync(sent, received);

    [Theory]
    [MemberData(nameof(PathsWithBackslashes))]
    public Task WithBackslashesInPaths_ThePathReachesTheBackendAsExpected(string sent, string received)
        => ReachesTheBackendAsync(sent, received, "--Gateway:RequestFiltering:BackslashesInPaths=true");

    private static async Task ReachesTheBackendAsync(string sent, string received, params string[] settings)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)), settings);

        var head = await RawSocket.GetHeadAsync(gateway.ProxyAddress, sent);

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.Equal([received], backend.RawTargets);
    }

    [Fact]
    public async Task WithARoutesPathTransform_UndecodedEscapesKeepTheirPlace_UnderADestinationsPath()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Clusters"]!["c1"]!["Destinations"]!["a"]!["Address"] = new Uri(backend.Address, "/base%2520/").ToString();
        config["ReverseProxy"]!["Routes"]!["all"]!["Transforms"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonObject { ["PathPrefix"] = "/v1" });
        await using var gateway = await GatewayUnderTest.StartAsync(config);

        foreach (var target in new[] { "/files/caf%E9.txt?q=%25", "/files/a%3Bb%FF%252F" })
        {
            Assert.StartsWith("HTTP/1.1 200", await RawSocket.GetHeadAsync(gateway.ProxyAddress, target), StringComparison.Ordinal); // a connection each: the head is read, not the body
        }

        // A transform changed the path: the part of it that is the client's keeps the client's escapes, %3B and %25 too
        // (%3B came out as ;, and with a %25 every escape was escaped again: a%3Bb%FF%252F reached it as a;b%25FF%252F).
        Assert.Equal(["/base%2520/v1/files/caf%E9.txt?q=%25", "/base%2520/v1/files/a%3Bb%FF%252F"], backend.RawTargets);
    }
}
