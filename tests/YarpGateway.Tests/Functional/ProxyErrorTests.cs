using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using YarpGateway.Tests.WebSockets;

namespace YarpGateway.Tests.Functional;

/// <summary>
/// Failed forwarding as the operator sees it: one log line a second per cluster and error (YARP's own
/// per-request warnings are off in appsettings.json), and every failure counted by error.
/// </summary>
public class ProxyErrorTests
{
    private static JsonObject RouteTo(string address) => new()
    {
        ["ReverseProxy"] = new JsonObject
        {
            ["Routes"] = new JsonObject { ["all"] = new JsonObject { ["ClusterId"] = "c1", ["Match"] = new JsonObject { ["Path"] = "/{**catch-all}" } } },
            ["Clusters"] = new JsonObject { ["c1"] = new JsonObject { ["Destinations"] = new JsonObject { ["d1"] = new JsonObject { ["Address"] = address } } } },
        },
    };

    private static bool IsFromYarp(string line) => line.Contains(" Yarp.", StringComparison.Ordinal);

    [Fact]
    public async Task DestinationDown_EveryFailureCounted_LoggedOnceASecondWithoutStackTraces()
    {
        await using var gateway = await GatewayUnderTest.StartAsync(RouteTo($"http://127.0.0.1:{LoopbackPort.Unused()}/"));
        using var client = gateway.CreateProxyClient();
        const int Requests = 12;

        var clock = Stopwatch.StartNew();
        for (var i = 0; i < Requests; i++)
        {
            using var response = await client.GetAsync("/x");
            Assert.True(response.StatusCode is HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable, $"request {i}: {(int)response.StatusCode}");
        }

        var elapsed = clock.Elapsed;

        // Refused connections are "request" errors; once outlier ejection takes the only destination
        // out, YARP has none left to try. Every request is counted once, after its retries.
        Assert.Equal(Requests, gateway.CounterSum("gateway.proxy.errors|cluster=c1|error="));
        Assert.Equal(Requests, gateway.Counter("gateway.proxy.errors|cluster=c1|error=request") + gateway.Counter("gateway.proxy.errors|cluster=c1|error=no_available_destinations"));

        var lines = gateway.Logs.Lines.ToArray();
        Assert.True(!lines.Any(IsFromYarp), string.Join('\n', lines.Where(IsFromYarp)));
        var errors = lines.Where(l => l.Contains("[ProxyError]", StringComparison.Ordinal)).ToArray();
        Assert.NotEmpty(errors);
        Assert.True(errors.Length <= 2 * ((int)elapsed.TotalSeconds + 1), $"{errors.Length} lines in {elapsed}: one a second per error kind at most\n{string.Join('\n', errors)}");
        Assert.All(errors, l => Assert.DoesNotContain('\n', l));
        Assert.Contains(errors, l => l.Contains("Proxy error request: route all, cluster c1, destination d1", StringComparison.Ordinal)
            && l.Contains("refused", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task NoDestinationLeft_Is503_CountedAndLoggedAsSuch()
    {
        var config = RouteTo("http://127.0.0.1:9/");
        config["ReverseProxy"]!["Clusters"]!["c1"]!["Destinations"]!["d1"]!["Metadata"] = new JsonObject { ["Weight"] = "0" }; // drained
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        using var response = await client.GetAsync("/x");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(1, gateway.Counter("gateway.proxy.errors|cluster=c1|error=no_available_destinations"));
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("Proxy error no_available_destinations: route all, cluster c1, destination -, after 1 attempt(s); answered 503. no exception.", StringComparison.Ordinal));
        Assert.True(!gateway.Logs.Lines.Any(IsFromYarp), string.Join('\n', gateway.Logs.Lines.Where(IsFromYarp)));
    }

    [Fact]
    public async Task WebSocketClientGoesAway_CountedAsAClientError_NoWarning()
    {
        await using var backend = await EchoWebSocketBackend.StartAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(RouteTo(backend.Address.ToString()));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));

        using (var socket = new ClientWebSocket())
        {
            socket.Options.KeepAliveInterval = TimeSpan.Zero;
            await socket.ConnectAsync(new UriBuilder(gateway.ProxyAddress) { Scheme = "ws", Path = "/echo" }.Uri, timeout.Token);
            await socket.SendAsync("hello"u8.ToArray(), WebSocketMessageType.Text, endOfMessage: true, timeout.Token);
            var buffer = new byte[16];
            Assert.Equal(5, (await socket.ReceiveAsync(buffer, timeout.Token)).Count);
            socket.Abort(); // gone without a close handshake, as a phone that loses its network
        }

        Assert.True(
            await Eventually.TrueAsync(() => gateway.CounterSum("gateway.proxy.errors|cluster=c1|error=upgrade_") == 1, TimeSpan.FromSeconds(15)),
            gateway.DescribeCounters("gateway.proxy.errors"));
        Assert.Equal(0, gateway.Counter("gateway.proxy.errors|cluster=c1|error=upgrade_request_destination") + gateway.Counter("gateway.proxy.errors|cluster=c1|error=upgrade_response_destination"));
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.StartsWith("Warning", StringComparison.Ordinal) || l.StartsWith("Error", StringComparison.Ordinal));
    }
}
