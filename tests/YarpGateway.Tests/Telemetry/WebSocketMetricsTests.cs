using System.Text.Json.Nodes;
using YarpGateway.Tests.Functional;
using YarpGateway.Tests.WebSockets;

namespace YarpGateway.Tests.Telemetry;

/// <summary>
/// The WebSocket series in a real scrape after real WebSocket traffic, checked by promtool. The
/// gateway runs as its own process: its meter provider listens to every meter named YarpGateway in
/// the process, so an in-process gateway's scrape could read the counters of another test's gateway
/// running at the same time (seen once in a fresh-clone CI run: 0 messages where 2 were relayed).
/// </summary>
public class WebSocketMetricsTests
{
    [Fact]
    public async Task ScrapeAfterWebSocketTraffic_HasBytesMessagesBufferedOpenAndEvictions_AndPassesPromtool()
    {
        await using var backend = await ScriptedWebSocketBackend.StartAsync();
        var configPath = ProxyConfigJson.WriteTemp("yarpgateway-wsmetrics-", SlowClientTests.Route(backend, new JsonObject()));
        using var gateway = GatewayProcess.StartOnLoopback(configPath, "--Gateway:WebSockets:CloseTimeout=00:00:01");
        var (proxy, management) = await gateway.FindEndpointsAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await using (var client = await RawWebSocketClient.ConnectAsync(proxy, "/m"))
        {
            var server = await backend.AcceptAsync();
            await client.SendAsync(WebSocketFrames.TextFrame("up", masked: true), timeout.Token);
            Assert.Equal("up", (await server.ReadFrameAsync(timeout.Token))!.Text);
            await server.SendAsync(WebSocketFrames.TextFrame("down-1"), timeout.Token);
            await server.SendAsync(WebSocketFrames.TextFrame("down-2"), timeout.Token);
            await server.SendAsync([0x83, 0x00], timeout.Token); // malformed: the gateway closes with 1002
            Assert.Equal("down-1", (await client.ReadFrameAsync(timeout.Token))!.Text);
            Assert.Equal("down-2", (await client.ReadFrameAsync(timeout.Token))!.Text);
            Assert.Equal(1002, (await client.ReadFrameAsync(timeout.Token))!.CloseCode);
            server.Finish();
        }

        using var http = new HttpClient { BaseAddress = management, Timeout = TimeSpan.FromSeconds(10) };
        var scrape = string.Empty;
        Assert.True(
            await Eventually.TrueAsync(async () =>
            {
                scrape = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative), timeout.Token);
                return MetricsScrapeTests.Value(scrape, "gateway_websocket_open") == 0 && MetricsScrapeTests.Value(scrape, "gateway_connections_upgraded") == 0;
            }, TimeSpan.FromSeconds(10)),
            "the WebSocket is still counted open");

        Assert.Equal(2, MetricsScrapeTests.Value(scrape, "gateway_websocket_messages_total{direction=\"downstream\"}"));
        Assert.Equal(1, MetricsScrapeTests.Value(scrape, "gateway_websocket_messages_total{direction=\"upstream\"}"));
        Assert.Equal(8 + 8 + 2, MetricsScrapeTests.Value(scrape, "gateway_websocket_bytes_total{direction=\"downstream\"}"));
        Assert.Equal(2 + 4 + 2, MetricsScrapeTests.Value(scrape, "gateway_websocket_bytes_total{direction=\"upstream\"}"));
        Assert.Equal(0, MetricsScrapeTests.Value(scrape, "gateway_websocket_buffered_bytes"));
        Assert.Equal(0, MetricsScrapeTests.Value(scrape, "gateway_websocket_open"));
        Assert.Equal(0, MetricsScrapeTests.Value(scrape, "gateway_connections_upgraded"));
        Assert.Equal(1, MetricsScrapeTests.Value(scrape, "gateway_websocket_evictions_total{reason=\"protocol_error\",route=\"ws\"}"));

        // The route's other evictions and its drops are at 0 from its first WebSocket: their first event is a rise.
        Assert.Equal(0, MetricsScrapeTests.Value(scrape, "gateway_websocket_evictions_total{reason=\"buffer_full\",route=\"ws\"}"));
        Assert.Equal(0, MetricsScrapeTests.Value(scrape, "gateway_websocket_evictions_total{reason=\"write_timeout\",route=\"ws\"}"));
        Assert.Equal(0, MetricsScrapeTests.Value(scrape, "gateway_websocket_dropped_messages_total{route=\"ws\"}"));
        Assert.Equal(0, MetricsScrapeTests.Value(scrape, "gateway_websocket_dropped_bytes_total{route=\"ws\"}"));

        var promtool = await Promtool.RunAsync(["check", "metrics"], scrape);
        if (promtool is not null)
        {
            Assert.True(promtool.Value.ExitCode == 0, promtool.Value.Output);
        }
    }
}
