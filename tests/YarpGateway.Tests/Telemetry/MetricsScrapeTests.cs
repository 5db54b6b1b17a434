using System.Globalization;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Xunit.Abstractions;
using YarpGateway.Tests.Deploy;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Telemetry;

/// <summary>A real gateway process, real traffic, a real scrape of /metrics, and promtool's verdict.</summary>
public partial class MetricsScrapeTests(ITestOutputHelper output)
{
    internal static double Value(string scrape, string series)
    {
        // A series without labels may be written with empty braces: name{} value.
        var line = scrape.Split('\n').FirstOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal) || l.StartsWith(series + "{} ", StringComparison.Ordinal))
            ?? throw new Xunit.Sdk.XunitException($"series {series} not in the scrape:\n{scrape}");
        return double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task ScrapeAfterTraffic_HasSchedulerChurnProxyAndReloadSeries_AndPassesPromtool()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var configPath = ProxyConfigJson.WriteTemp("yarpgateway-metrics-", ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")));
        using var gateway = GatewayProcess.StartOnLoopback(configPath);
        var (proxy, management) = await gateway.FindEndpointsAsync();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };

        // 20 connections, one request each, then 30 more requests over one keep-alive connection.
        const int connections = 20;
        for (var i = 0; i < connections; i++)
        {
            using var socket = await RawSocket.ConnectAsync(proxy);
            await socket.SendAsync(Encoding.ASCII.GetBytes("GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
            await RawSocket.ReceiveUntilClosedAsync(socket);
        }

        using var client = new HttpClient { BaseAddress = proxy };
        for (var i = 0; i < 30; i++)
        {
            using var response = await client.GetAsync("/y");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        await SendH2cAsync(client); // one more, an HTTP/2 stream queued to the thread pool: kestrel.queued_requests would have a series

        // A reload, so the reload counter has something to say.
        ProxyConfigJson.WriteAtomically(configPath, ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "2")));
        string scrape = string.Empty;
        Assert.True(await Eventually.TrueAsync(async () =>
        {
            scrape = await http.GetStringAsync(new Uri(management, "/metrics"));
            return scrape.Contains("gateway_config_reloads_total{result=\"applied\"} 1", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(10)), "no applied reload in the scrape");

        Assert.True(Value(scrape, "gateway_connections_accepted_total") >= connections + 1);
        Assert.True(Value(scrape, "gateway_connections_closed_total") >= connections);
        Assert.True(Value(scrape, "gateway_scheduler_delay_seconds_count") >= 1);
        Assert.InRange(Value(scrape, "gateway_scheduler_delay_seconds_sum") / Value(scrape, "gateway_scheduler_delay_seconds_count"), 0, 1);
        Assert.True(Value(scrape, "gateway_scheduler_threads") >= 1);
        Assert.Equal(connections + 31, Value(scrape, "gateway_proxy_request_duration_seconds_count{cluster=\"c1\",route=\"all\",status_class=\"2xx\"}"));
        Assert.Equal(connections + 31, Value(scrape, "gateway_proxy_destination_requests_total{cluster=\"c1\",destination=\"a\"}"));
        Assert.Equal(1, Value(scrape, "gateway_cluster_available_destinations{cluster=\"c1\"}"));
        Assert.Contains("target_info{service_name=\"yarpgateway\"", scrape, StringComparison.Ordinal);
        Assert.Contains("# TYPE kestrel_connection_duration_seconds histogram", scrape, StringComparison.Ordinal);
        Assert.Contains("# TYPE dotnet_gc_pause_time_seconds_total counter", scrape, StringComparison.Ordinal);
        Assert.DoesNotContain("/x", scrape, StringComparison.Ordinal); // no path as a label
        foreach (var dropped in PerRequestGaugeSeries)
        {
            Assert.DoesNotContain(dropped, scrape, StringComparison.Ordinal); // Gateway:Telemetry:PerRequestGauges is off by default
        }

        foreach (var dropped in PlatformDurationSeries)
        {
            Assert.DoesNotContain(dropped, scrape, StringComparison.Ordinal); // Gateway:Telemetry:PlatformRequestDurations is off by default
        }

        var promtool = await Promtool.RunAsync(["check", "metrics"], scrape);
        if (promtool is null)
        {
            output.WriteLine("promtool is not installed here; `promtool check metrics` was not run.");
            return;
        }

        Assert.True(promtool.Value.ExitCode == 0, promtool.Value.Output);
    }

    private static readonly string[] PerRequestGaugeSeries = ["http_server_active_requests", "http_client_active_requests", "http_client_open_connections", "kestrel_queued_requests"];

    private static readonly string[] PlatformDurationSeries = ["http_server_request_duration_seconds", "http_client_request_duration_seconds"];

    /// <summary>One request over HTTP/2 without TLS (prior knowledge), as gRPC clients and h2load send them.</summary>
    private static async Task SendH2cAsync(HttpClient client)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/h2") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(HttpVersion.Version20, response.Version);
    }

    [Fact]
    public async Task PerRequestGaugesAndPlatformDurations_WhenTurnedOn_AreScraped()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var configPath = ProxyConfigJson.WriteTemp("yarpgateway-metrics-", ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")));
        using var gateway = GatewayProcess.StartOnLoopback(configPath, "--Gateway:Telemetry:PerRequestGauges=true", "--Gateway:Telemetry:PlatformRequestDurations=true");
        var (proxy, management) = await gateway.FindEndpointsAsync();
        using var client = new HttpClient { BaseAddress = proxy, Timeout = TimeSpan.FromSeconds(10) };
        using (var response = await client.GetAsync("/y"))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        await SendH2cAsync(client);
        var scrape = await client.GetStringAsync(new Uri(management, "/metrics"));

        foreach (var series in PerRequestGaugeSeries)
        {
            Assert.Contains($"# TYPE {series} gauge", scrape, StringComparison.Ordinal);
        }

        foreach (var series in PlatformDurationSeries)
        {
            Assert.Contains($"# TYPE {series} histogram", scrape, StringComparison.Ordinal);
        }

        // The proxied request is over: no request to the backend in flight, its connection idle in the pool.
        Assert.Equal(0, Value(scrape, "http_client_active_requests{http_request_method=\"GET\",url_scheme=\"http\"}"));
        Assert.Contains("http_client_open_connections{http_connection_state=\"idle\"", scrape, StringComparison.Ordinal);
    }

    // ASP.NET Core's rate-limiting meter on a rate-limited route: the requests by result (what the dashboard's 429 panel
    // reads) are exported; the in-flight lease gauge, two updates per request, is dropped with the other per-request gauges.
    // The requests the gateway answered without proxying them (the 429, and 404s for a host no route takes) are counted by
    // status, now that ASP.NET Core's own request histogram is off by default.
    [Fact]
    public async Task ARateLimitedRoute_ExportsItsRequestsByResult_NotThePerRequestLeaseGauge_AndRequestsNotProxiedAreCounted()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var configPath = ProxyConfigJson.WriteTemp("yarpgateway-metrics-", ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")));
        using var gateway = GatewayProcess.StartOnLoopback(configPath,
            "--Gateway:RateLimiting:Policies:two:Kind=FixedWindow", "--Gateway:RateLimiting:Policies:two:PermitLimit=2",
            "--Gateway:RateLimiting:Policies:two:Window=00:10:00", "--ReverseProxy:Routes:all:RateLimiterPolicy=two",
            "--ReverseProxy:Routes:all:Match:Hosts:0=127.0.0.1");
        var (proxy, management) = await gateway.FindEndpointsAsync();
        using var client = new HttpClient { BaseAddress = proxy, Timeout = TimeSpan.FromSeconds(10) };
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
        {
            using var response = await client.GetAsync("/y");
            statuses.Add(response.StatusCode);
        }

        for (var i = 0; i < 2; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/z") { Headers = { Host = "elsewhere.example" } };
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }

        using (var refused = await client.GetAsync("/public/..;/admin")) // a request filter's own answer, before the request's frame
        {
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        }

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests], statuses);
        var scrape = await client.GetStringAsync(new Uri(management, "/metrics"));
        Assert.Equal(2, Value(scrape, "aspnetcore_rate_limiting_requests_total{aspnetcore_rate_limiting_policy=\"two\",aspnetcore_rate_limiting_result=\"acquired\"}"));
        Assert.Equal(1, Value(scrape, "aspnetcore_rate_limiting_requests_total{aspnetcore_rate_limiting_policy=\"two\",aspnetcore_rate_limiting_result=\"endpoint_limiter\"}"));
        Assert.Contains("aspnetcore_rate_limiting_request_lease_duration_seconds_count", scrape, StringComparison.Ordinal);
        Assert.DoesNotContain("aspnetcore_rate_limiting_active_request_leases", scrape, StringComparison.Ordinal);
        Assert.Equal(1, Value(scrape, "gateway_requests_not_proxied_total{status=\"429\"}")); // refused before the proxy pipeline
        Assert.Equal(2, Value(scrape, "gateway_requests_not_proxied_total{status=\"404\"}")); // no route
        Assert.Equal(1, Value(scrape, "gateway_requests_not_proxied_total{status=\"400\"}"));
        Assert.Equal(2, Value(scrape, "gateway_proxy_request_duration_seconds_count{cluster=\"c1\",route=\"all\",status_class=\"2xx\"}"));
    }

    [Fact]
    public Task AlertRules_PassPromtool()
        => AssertPromtoolPassesAsync(["check", "rules", RepositoryFiles.PathOf("deploy/prometheus/alerts.yaml")], "SUCCESS: 15 rules found");

    // deploy/prometheus/alerts.test.yaml: which series make an alert fire, and which must not.
    [Fact]
    public Task AlertRules_PassTheirPromtoolUnitTests()
        => AssertPromtoolPassesAsync(["test", "rules", RepositoryFiles.PathOf("deploy/prometheus/alerts.test.yaml")], "SUCCESS");

    /// <summary>Runs promtool and asserts it passed with <paramref name="expected"/> in its output; outside CI, a missing promtool is reported instead.</summary>
    private async Task AssertPromtoolPassesAsync(string[] args, string expected)
    {
        var promtool = await Promtool.RunAsync(args);
        if (promtool is null)
        {
            output.WriteLine($"promtool is not installed here; `promtool {args[0]} {args[1]}` was not run.");
            return;
        }

        Assert.True(promtool.Value.ExitCode == 0, promtool.Value.Output);
        Assert.Contains(expected, promtool.Value.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void AlertRules_EachHaveSummaryAndRunbook_AndDashboardParses()
    {
        var rules = File.ReadAllText(RepositoryFiles.PathOf("deploy/prometheus/alerts.yaml"));
        var alerts = Regex.Count(rules, @"- alert: (\w+)");
        Assert.Equal(15, alerts);
        Assert.Equal(alerts, Regex.Count(rules, @"summary: "));
        Assert.Equal(alerts, Regex.Count(rules, @"runbook: "));

        using var dashboard = System.Text.Json.JsonDocument.Parse(File.ReadAllText(RepositoryFiles.PathOf("deploy/grafana/dashboard.json")));
        Assert.True(dashboard.RootElement.GetProperty("panels").GetArrayLength() >= 8);

        // Grafana tells a panel's queries apart by refId: two alike (the connection admission panel had two E's) and
        // one of them goes missing from the panel or its legend.
        foreach (var panel in dashboard.RootElement.GetProperty("panels").EnumerateArray().Where(p => p.TryGetProperty("targets", out _)))
        {
            var refIds = panel.GetProperty("targets").EnumerateArray().Select(t => t.GetProperty("refId").GetString()).ToList();
            Assert.True(refIds.Count == refIds.Distinct().Count(), $"panel '{panel.GetProperty("title").GetString()}' repeats a refId: {string.Join(", ", refIds)}");
        }
    }
}
