using System.Text;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Hostile;

/// <summary>What the backend receives for paths with encoded characters.</summary>
public class PathEncodingTests
{
    public static TheoryData<string, string> Paths => new()
    {
        { "/a%2Fb", "/a%2Fb" },                 // an encoded slash stays one (it used to arrive as %252F)
        { "/a%2fb?x=%2F", "/a%2Fb?x=%2F" },     // either case; the query is passed as sent
        { "/a%20b", "/a%20b" },
        { "/a%252Fb", "/a%252Fb" },             // a literal "%2F" in the name stays escaped
        { "/a/../b", "/b" },                    // dot segments resolved before routing, as Kestrel does
    };

    [Theory]
    [MemberData(nameof(Paths))]
    public async Task ThePathReachesTheBackendAsExpected(string sent, string received)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)));
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);

        await socket.SendAsync(Encoding.ASCII.GetBytes($"GET {sent} HTTP/1.1\r\nHost: x\r\n\r\n"));
        var head = await RawSocket.ReceiveResponseHeadAsync(socket);

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.Equal([received], backend.RawTargets);
    }
}
