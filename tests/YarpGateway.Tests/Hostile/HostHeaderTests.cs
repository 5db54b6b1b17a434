using System.Text;
using System.Text.Json.Nodes;
using YarpGateway.RequestFiltering;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Hostile;

/// <summary>
/// The Host header as routing and the backend see it. <c>admin.example.</c> is <c>admin.example</c>: before, a
/// trailing dot passed over the host's route and reached a catch-all route, leaving behind whatever the host's
/// route added (its policies, its limits). An empty <c>Host:</c> is no host: before, it was copied beside the one
/// the backend request gets, and the backend received two.
/// </summary>
public class HostHeaderTests
{
    [Theory]
    [InlineData("admin.example.", "admin.example")]
    [InlineData("admin.example.:8080", "admin.example:8080")]
    [InlineData("127.0.0.1.", "127.0.0.1")]
    [InlineData("admin.example", null)]
    [InlineData("admin.example:8080", null)]
    [InlineData("[::1]:8080", null)]
    [InlineData("[::1]", null)]
    [InlineData("admin.example..", null)] // not a DNS name: left for routing to match nothing
    [InlineData(".", null)]
    public void TheNamesOneTrailingDot_IsDropped_ThePortKept(string host, string? expected)
        => Assert.Equal(expected, HostHeader.Without(host));

    [Theory]
    [InlineData("admin.example.", "admin.example")]
    [InlineData("ADMIN.example.:8443", "ADMIN.example:8443")]
    public async Task AHostWithATrailingDot_IsRoutedAsTheHostWithout(string host, string forwarded)
    {
        await using var admin = await TestBackend.StartAsync("admin");
        await using var other = await TestBackend.StartAsync("other");
        static JsonObject Cluster(TestBackend backend) => new() { ["Destinations"] = new JsonObject { ["d"] = new JsonObject { ["Address"] = backend.Address.ToString() } } };
        var config = new JsonObject
        {
            ["ReverseProxy"] = new JsonObject
            {
                ["Routes"] = new JsonObject
                {
                    ["admin"] = new JsonObject { ["ClusterId"] = "admin", ["Match"] = new JsonObject { ["Path"] = "/{**x}", ["Hosts"] = new JsonArray("admin.example") } },
                    ["all"] = new JsonObject { ["ClusterId"] = "other", ["Match"] = new JsonObject { ["Path"] = "/{**x}" } },
                },
                ["Clusters"] = new JsonObject { ["admin"] = Cluster(admin), ["other"] = Cluster(other) },
            },
        };
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);

        await socket.SendAsync(Encoding.ASCII.GetBytes($"GET /secret HTTP/1.1\r\nHost: {host}\r\n\r\n"));

        Assert.StartsWith("HTTP/1.1 200", await RawSocket.ReceiveResponseHeadAsync(socket), StringComparison.Ordinal);
        Assert.Equal(0, other.Requests);
        Assert.Equal(forwarded, Assert.Single(admin.RequestHeaders)["X-Forwarded-Host"]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // RequestHeaderOriginalHost: there is no original host to keep
    public async Task AnEmptyHost_ReachesTheBackendAsOneHost_TheDestinations(bool originalHost)
    {
        await using var backend = await TestBackend.StartAsync("b");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        if (originalHost)
        {
            config["ReverseProxy"]!["Routes"]!["all"]!["Transforms"] = new JsonArray(new JsonObject { ["RequestHeaderOriginalHost"] = "true" });
        }

        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);

        await socket.SendAsync(Encoding.ASCII.GetBytes("GET /x HTTP/1.1\r\nHost: \r\n\r\n"));

        var head = await RawSocket.ReceiveResponseHeadAsync(socket);
        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal); // a Kestrel backend answers 400 to two Host headers
        Assert.Equal($"127.0.0.1:{backend.Port}", Assert.Single(backend.RequestHeaders)["Host"]);
    }
}
