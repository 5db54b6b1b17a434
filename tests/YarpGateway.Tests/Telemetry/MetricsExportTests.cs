using System.Diagnostics.Metrics;
using System.Net;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using YarpGateway.Telemetry;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Telemetry;

/// <summary>The scrape endpoint (OpenTelemetry's Prometheus exporter) and the OTLP settings.</summary>
public class MetricsExportTests
{
    [Fact]
    public async Task Metrics_AreServedOnTheManagementPortOnly_AsPrometheusTextOrOpenMetrics()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.Config(("api", "/api/{**rest}", "c1"), ("c1", "RoundRobin", [(backend, null)])));
        using var management = gateway.CreateManagementClient();
        using var proxy = gateway.CreateProxyClient();

        using var text = await management.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, text.StatusCode);
        Assert.StartsWith("text/plain", text.Content.Headers.ContentType!.ToString(), StringComparison.Ordinal);
        Assert.Contains("# TYPE gateway_scheduler_threads gauge", await text.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        using var request = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        request.Headers.Accept.ParseAdd("application/openmetrics-text; version=1.0.0");
        using var openMetrics = await management.SendAsync(request);
        Assert.StartsWith("application/openmetrics-text", openMetrics.Content.Headers.ContentType!.ToString(), StringComparison.Ordinal);
        Assert.EndsWith("# EOF\n", await openMetrics.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        using var onProxy = await proxy.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.NotFound, onProxy.StatusCode); // no route matches it, and the exporter is not there
        Assert.Equal(0, backend.Requests);
    }

    [Theory]
    [InlineData("System.Runtime", "dotnet.gc.collections", false, null, MetricsExport.SmallCardinalityLimit)]
    [InlineData("Microsoft.AspNetCore.Server.Kestrel", "kestrel.connection.duration", false, null, MetricsExport.SmallCardinalityLimit)]
    [InlineData(GatewayMeter.Name, "gateway.connections.accepted", false, null, MetricsExport.SmallCardinalityLimit)]
    [InlineData(GatewayMeter.Name, "gateway.scheduler.delay", false, null, MetricsExport.SmallCardinalityLimit)]
    [InlineData(GatewayMeter.Name, "gateway.requests.not_proxied", false, null, MetricsExport.SmallCardinalityLimit)] // by status
    public void SmallFixedLabelSets_GetASmallCardinalityLimit_AndOneStreamEach(string meterName, string instrumentName, bool perRequest, string? exportedName, int limit)
    {
        using var meter = new Meter(meterName);
        var stream = MetricsExport.StreamFor(meter.CreateCounter<long>(instrumentName), new PlatformInstruments(perRequest, RequestDurations: false));

        Assert.NotNull(stream);
        Assert.Equal((exportedName, (int?)limit), (stream.Name, stream.CardinalityLimit));
    }

    [Fact]
    public void GaugesNamedCount_AreScrapedAsCountValue_AndCountersKeepTheirName()
    {
        using var meter = new Meter("System.Runtime");
        var platform = new PlatformInstruments(PerRequestGauges: false, RequestDurations: false);

        // What the runtime publishes, each with its own kind (OpenTelemetry 1.21 scrapes up-down counters as gauges).
        Assert.Equal("dotnet.timer.count.value", MetricsExport.StreamFor(meter.CreateObservableUpDownCounter("dotnet.timer.count", () => 1L), platform)?.Name);
        Assert.Equal("dotnet.thread_pool.thread.count.value", MetricsExport.StreamFor(meter.CreateObservableUpDownCounter("dotnet.thread_pool.thread.count", () => 1L), platform)?.Name);
        Assert.Equal("dotnet.process.cpu.count.value", MetricsExport.StreamFor(meter.CreateObservableGauge("dotnet.process.cpu.count", () => 2), platform)?.Name);
        Assert.Equal("x.count.value", MetricsExport.StreamFor(meter.CreateUpDownCounter<long>("x.count"), platform)?.Name);
        Assert.Equal("y.count.value", MetricsExport.StreamFor(meter.CreateGauge<long>("y.count"), platform)?.Name);
        Assert.Null(MetricsExport.StreamFor(meter.CreateObservableCounter("dotnet.thread_pool.work_item.count", () => 1L), platform)?.Name); // _count_total
        Assert.Null(MetricsExport.StreamFor(meter.CreateCounter<long>("z.count"), platform)?.Name);
        Assert.Null(MetricsExport.StreamFor(meter.CreateObservableUpDownCounter("dotnet.thread_pool.queue.length", () => 0L), platform)?.Name);
    }

    [Theory]
    [InlineData(GatewayMeter.Name, "gateway.proxy.errors")] // by cluster and error
    [InlineData("Microsoft.AspNetCore.Hosting", "http.server.request.duration")]
    public void LabelsThatGrowWithTheConfig_KeepOpenTelemetrysDefaultStream(string meterName, string instrumentName)
    {
        using var meter = new Meter(meterName);
        Assert.Null(MetricsExport.StreamFor(meter.CreateHistogram<double>(instrumentName), new PlatformInstruments(PerRequestGauges: false, RequestDurations: true)));
    }

    [Theory]
    [InlineData(GatewayMeter.Name, "gateway.proxy.errors", 5000)]
    [InlineData("Microsoft.AspNetCore.Hosting", "http.server.request.duration", 5000)]
    [InlineData(GatewayMeter.Name, "gateway.proxy.request.duration", 5000)] // with its destination label left out
    [InlineData(GatewayMeter.Name, "gateway.connections.accepted", MetricsExport.SmallCardinalityLimit)] // a fixed label set keeps its 100
    public void MaxSeriesPerMetric_RaisesTheLimitOfMetricsLabelledByTheConfig_Only(string meterName, string instrumentName, int limit)
    {
        using var meter = new Meter(meterName);
        var stream = MetricsExport.StreamFor(meter.CreateHistogram<double>(instrumentName), Shipped with { RequestDurations = true }, maxSeries: 5000);

        Assert.NotNull(stream);
        Assert.Equal(limit, stream.CardinalityLimit);
    }

    [Theory]
    [InlineData(null, TelemetryOptions.DefaultMaxSeriesPerMetric)]
    [InlineData("10000", 10000)]
    [InlineData("100", 100)]
    [InlineData("99", TelemetryOptions.DefaultMaxSeriesPerMetric)] // refused by the options validation at start
    [InlineData("lots", TelemetryOptions.DefaultMaxSeriesPerMetric)] // the same
    public void MaxSeriesPerMetric_IsReadAtStart(string? value, int expected)
    {
        var configuration = value is null ? Config() : Config(("Gateway:Telemetry:MaxSeriesPerMetric", value));
        Assert.Equal(expected, MetricsExport.MaxSeriesPerMetric(configuration.GetSection(TelemetryOptions.SectionName)));
    }

    [Theory]
    [InlineData(GatewayMeter.Name, "gateway.proxy.request.duration", "destination")]
    [InlineData(GatewayMeter.Name, "gateway.outlier.ejections", "destination")]
    [InlineData("System.Net.Http", "http.client.request.duration", "server.address,server.port,network.peer.address")]
    [InlineData("System.Net.Http", "http.client.connection.duration", "server.address,server.port,network.peer.address")]
    public void LabelsThatGrowWithRollingUpdates_AreNotExported(string meterName, string instrumentName, string excluded)
    {
        using var meter = new Meter(meterName);
        var stream = MetricsExport.StreamFor(meter.CreateHistogram<double>(instrumentName), new PlatformInstruments(PerRequestGauges: false, RequestDurations: true));

        Assert.NotNull(stream);
        Assert.Equal(excluded.Split(','), stream.ExcludedTagKeys);
        Assert.Null(stream.CardinalityLimit);
    }

    [Fact]
    public void PerRequestGauges_AreDroppedUnlessTurnedOn()
    {
        using var meter = new Meter("Microsoft.AspNetCore.Hosting");
        var gauge = meter.CreateUpDownCounter<long>("http.server.active_requests");

        Assert.Same(MetricStreamConfiguration.Drop, MetricsExport.StreamFor(gauge, Shipped));
        Assert.Null(MetricsExport.StreamFor(gauge, Shipped with { PerRequestGauges = true }));
    }

    [Theory]
    [InlineData("Microsoft.AspNetCore.Hosting", "http.server.request.duration")]
    [InlineData("System.Net.Http", "http.client.request.duration")]
    public void PlatformRequestDurations_AreDroppedUnlessTurnedOn(string meterName, string instrumentName)
    {
        using var meter = new Meter(meterName);
        var histogram = meter.CreateHistogram<double>(instrumentName);

        Assert.Same(MetricStreamConfiguration.Drop, MetricsExport.StreamFor(histogram, Shipped));
        Assert.NotSame(MetricStreamConfiguration.Drop, MetricsExport.StreamFor(histogram, Shipped with { RequestDurations = true }));
    }

    /// <summary>Both of the platform's per-request families off, as shipped.</summary>
    private static readonly PlatformInstruments Shipped = new(PerRequestGauges: false, RequestDurations: false);

    // On the real process: in this test process every gateway's meter provider also sees the other
    // gateways' instruments of the same meter name, so exact values need a process of their own.
    [Fact]
    public async Task TheFirstScrape_HasTheCountersAlertsReadAtZero_AndAReloadsNewClusterGetsThemToo()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var configPath = ProxyConfigJson.WriteTemp("yarpgateway-zeros-", AdmissionConfig.CatchAllWithRouteLimit(backend, AdmissionConfig.Limit("5", "0")));
        using var gateway = GatewayProcess.StartOnLoopback(configPath);
        var (proxy, management) = await gateway.FindEndpointsAsync();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };

        var scrape = await http.GetStringAsync(new Uri(management, "/metrics"));

        string[] zeros =
        [
            "gateway_config_reloads_total{result=\"rejected\"}",
            "gateway_config_reloads_total{result=\"applied\"}",
            "gateway_proxy_retry_budget_exhausted_total{cluster=\"c1\"}",
            "gateway_proxy_errors_total{cluster=\"c1\",error=\"request\"}",
            "gateway_proxy_errors_total{cluster=\"c1\",error=\"response_headers\"}",
            "gateway_proxy_retries_total{cluster=\"c1\",reason=\"connect_failure\"}",
            "gateway_proxy_timeouts_total{cluster=\"c1\",kind=\"try\"}",
            "gateway_outlier_ejections_total{cluster=\"c1\"}",
            "gateway_connection_admission_closed_total{reason=\"wait_timeout\"}",
            "gateway_connection_admission_closed_total{reason=\"queue_full\"}",
            "gateway_connection_admission_delayed_total", // the dashboard's connection admission panel reads both
            "gateway_connection_admission_first_request_expired_total",
            "gateway_admission_rejected_total{limit=\"upgrade\",name=\"global\",reason=\"upgrade_rate\"}",
        ];
        foreach (var series in zeros)
        {
            Assert.Equal(0, MetricsScrapeTests.Value(scrape, series));
        }

        // A route limit comes into force with its first request: its rejections start at 0.
        using (var response = await http.GetAsync(new Uri(proxy, "/x")))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Equal(0, MetricsScrapeTests.Value(await http.GetStringAsync(new Uri(management, "/metrics")), "gateway_admission_rejected_total{limit=\"route\",name=\"all\",reason=\"queue_full\"}"));

        ProxyConfigJson.WriteAtomically(configPath, ProxyConfigJson.Config([("all", "/{**catch-all}", "c1"), ("new", "/new/{**rest}", "c2")], [("c1", "RoundRobin", [(backend, null)]), ("c2", "RoundRobin", [(backend, null)])]));
        Assert.True(await Eventually.TrueAsync(async () => (await http.GetStringAsync(new Uri(management, "/metrics"))).Contains("gateway_proxy_retry_budget_exhausted_total{cluster=\"c2\"} 0", StringComparison.Ordinal), TimeSpan.FromSeconds(15)),
            "the reload's new cluster has no series at 0: " + gateway.StandardOutput);
    }

    // Per-pod destinations from DNS are new on every rolling update. A counter or histogram keeps a series for every
    // label set it saw, for the process's life: 2,100 destinations replaced by one left 2,000 series of gone ones in
    // the request-duration histogram (a 4.3 MB scrape) and folded the new one into its overflow series.
    [Fact]
    public async Task DestinationsThatAreGone_LeaveNoSeries_AndTheNewOnesHaveTheirOwn()
    {
        await using var before = await TestBackend.StartAsync("old");
        await using var after = await TestBackend.StartAsync("new");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (before, null));
        config["ReverseProxy"]!["Clusters"]!["c1"]!["Destinations"]!["old-2"] = new System.Text.Json.Nodes.JsonObject { ["Address"] = before.Address.ToString() };
        var configPath = ProxyConfigJson.WriteTemp("yarpgateway-churn-", config);
        using var gateway = GatewayProcess.StartOnLoopback(configPath);
        var (proxy, management) = await gateway.FindEndpointsAsync();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        for (var i = 0; i < 4; i++)
        {
            using var response = await http.GetAsync(new Uri(proxy, "/x"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var scrape = await http.GetStringAsync(new Uri(management, "/metrics"));
        Assert.Equal(2, MetricsScrapeTests.Value(scrape, "gateway_proxy_destination_requests_total{cluster=\"c1\",destination=\"old\"}"));
        Assert.Equal(2, MetricsScrapeTests.Value(scrape, "gateway_proxy_destination_requests_total{cluster=\"c1\",destination=\"old-2\"}"));

        // Synchronised on a request that reaches the new destination: its series can show (YARP's cluster has it)
        // a moment before load balancing picks it, and a request sent then still went to "old" (once in CI).
        ProxyConfigJson.WriteAtomically(configPath, ProxyConfigJson.CatchAll("RoundRobin", (after, null)));
        var probes = 0;
        Assert.True(await Eventually.TrueAsync(async () =>
        {
            probes++;
            using var response = await http.GetAsync(new Uri(proxy, "/x"));
            return await response.Content.ReadAsStringAsync() == "new";
        }, TimeSpan.FromSeconds(15)), "no request reached the new destination: " + gateway.StandardOutput);
        for (var i = 0; i < 2; i++)
        {
            using var response = await http.GetAsync(new Uri(proxy, "/x"));
            Assert.Equal("new", await response.Content.ReadAsStringAsync());
        }

        scrape = await http.GetStringAsync(new Uri(management, "/metrics"));
        var stale = scrape.Split('\n').Where(l => l.Contains("\"old", StringComparison.Ordinal) || l.Contains($"\"{before.Port}\"", StringComparison.Ordinal)).ToArray();
        Assert.True(stale.Length == 0, "series of a destination that is gone: " + string.Join('\n', stale));
        Assert.Equal(3, MetricsScrapeTests.Value(scrape, "gateway_proxy_destination_requests_total{cluster=\"c1\",destination=\"new\"}"));
        Assert.Equal(0, MetricsScrapeTests.Value(scrape, "gateway_proxy_destination_errors_total{cluster=\"c1\",destination=\"new\"}"));
        Assert.InRange(MetricsScrapeTests.Value(scrape, "gateway_proxy_destination_duration_p99_seconds{cluster=\"c1\",destination=\"new\"}"), 0.0001, 30);
        Assert.Equal(4 + probes + 2, MetricsScrapeTests.Value(scrape, "gateway_proxy_request_duration_seconds_count{cluster=\"c1\",route=\"all\",status_class=\"2xx\"}"));
    }

    // OpenTelemetry keeps a label set's place in a cumulative stream after it stops being reported: before the
    // instruments were replaced, the second set of 60 destinations here already overflowed the 100 series and the third
    // had no series of its own, ever (at the default 2,000: weeks of rolling updates).
    [Fact]
    public async Task DestinationsReplacedAgainAndAgain_KeepSeriesOfTheirOwn_PastTheSeriesLimit()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var configPath = ProxyConfigJson.WriteTemp("yarpgateway-pods-", Generation(backend, 0));
        using var gateway = GatewayProcess.StartOnLoopback(configPath, "--Gateway:Telemetry:MaxSeriesPerMetric=100");
        var (_, management) = await gateway.FindEndpointsAsync();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };

        for (var generation = 0; generation < 4; generation++)
        {
            if (generation > 0)
            {
                ProxyConfigJson.WriteAtomically(configPath, Generation(backend, generation));
            }

            var scrape = "";
            var own = 0;
            Assert.True(await Eventually.TrueAsync(async () =>
            {
                scrape = await http.GetStringAsync(new Uri(management, "/metrics"));
                own = scrape.Split('\n').Count(l => l.StartsWith($"gateway_proxy_destination_in_flight{{cluster=\"c1\",destination=\"g{generation}-", StringComparison.Ordinal));
                return own == 60 && !scrape.Contains("gateway_proxy_destination_in_flight{otel_metric_overflow", StringComparison.Ordinal);
            }, TimeSpan.FromSeconds(20)), $"generation {generation}: {own} series of its own; overflow: {scrape.Contains("otel_metric_overflow", StringComparison.Ordinal)}");
            Assert.Equal(1, scrape.Split('\n').Count(l => l.StartsWith("# TYPE gateway_proxy_destination_in_flight ", StringComparison.Ordinal)));
        }
    }

    private static System.Text.Json.Nodes.JsonObject Generation(TestBackend backend, int generation)
    {
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        var destinations = new System.Text.Json.Nodes.JsonObject();
        for (var i = 0; i < 60; i++)
        {
            destinations[$"g{generation}-{i}"] = new System.Text.Json.Nodes.JsonObject { ["Address"] = backend.Address.ToString() };
        }

        config["ReverseProxy"]!["Clusters"]!["c1"]!["Destinations"] = destinations;
        return config;
    }

    private static IConfiguration Config(params (string Key, string Value)[] values)
        => new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    [Fact]
    public void Otlp_IsOnWithTheGatewaysEndpoint_OrTheStandardVariables_AndOffOtherwise()
    {
        Assert.False(MetricsExport.IsOtlpConfigured(Config()));
        Assert.True(MetricsExport.IsOtlpConfigured(Config(("Gateway:Telemetry:Otlp:Endpoint", "http://collector:4317"))));
        Assert.True(MetricsExport.IsOtlpConfigured(Config(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"))));
        Assert.True(MetricsExport.IsOtlpConfigured(Config(("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://collector:4318/v1/metrics"))));
    }

    [Fact]
    public void Otlp_TheProtocolIsWhatIsConfigured_NeverGuessedFromThePort()
    {
        var configuration = Config(("Gateway:Telemetry:Otlp:Endpoint", "http://collector:4318"));
        var exporter = new OtlpExporterOptions();
        var reader = new MetricReaderOptions();
        MetricsExport.ConfigureOtlp(configuration.GetSection("Gateway:Telemetry:Otlp"), configuration, exporter, reader);
        Assert.Equal(new Uri("http://collector:4318"), exporter.Endpoint);
        Assert.Equal(OtlpExportProtocol.Grpc, exporter.Protocol); // 4318 is only a port
        Assert.Equal(15_000, reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds);

        configuration = Config(("Gateway:Telemetry:Otlp:Protocol", "HttpProtobuf"), ("Gateway:Telemetry:Otlp:ExportInterval", "00:00:05"));
        exporter = new OtlpExporterOptions { Endpoint = new Uri("http://from-variable:4318") };
        MetricsExport.ConfigureOtlp(configuration.GetSection("Gateway:Telemetry:Otlp"), configuration, exporter, reader);
        Assert.Equal(new Uri("http://from-variable:4318"), exporter.Endpoint); // the variable's, as nothing here overrides it
        Assert.Equal(OtlpExportProtocol.HttpProtobuf, exporter.Protocol);
        Assert.Equal(5_000, reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds);
    }

    // Before: the shipped appsettings.json set ExportInterval to its default, which takes precedence over the standard
    // variable, so OTEL_METRIC_EXPORT_INTERVAL (documented as working) was never read: every pod pushed every 15 s.
    [Theory]
    [InlineData(null)]
    [InlineData("deploy/kubernetes/appsettings.Production.json")]
    public void Otlp_TheStandardIntervalVariable_IsRead_WithTheShippedConfiguration(string? layeredOver)
    {
        var builder = new ConfigurationBuilder().AddJsonFile(Deploy.RepositoryFiles.PathOf("appsettings/appsettings.json"));
        if (layeredOver is not null)
        {
            builder.AddJsonFile(Deploy.RepositoryFiles.PathOf(layeredOver));
        }

        var configuration = builder
            .AddInMemoryCollection([new("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"), new("OTEL_METRIC_EXPORT_INTERVAL", "5000")])
            .Build();
        var reader = new MetricReaderOptions();
        reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = 5_000; // as the SDK sets it from the variable

        MetricsExport.ConfigureOtlp(configuration.GetSection("Gateway:Telemetry:Otlp"), configuration, new OtlpExporterOptions(), reader);

        Assert.Equal(5_000, reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds);
    }

    // Before: OpenTelemetry posts to an endpoint set in code as it is, so http://collector:4318 got every export at
    // "/", answered 404, and the metrics were lost without a word; OTEL_EXPORTER_OTLP_ENDPOINT gets the path added.
    [Theory]
    [InlineData("http://collector:4318", "http://collector:4318/v1/metrics")]
    [InlineData("http://collector:4318/", "http://collector:4318/v1/metrics")]
    [InlineData("https://gateway.example/otlp", "https://gateway.example/otlp/v1/metrics")]
    [InlineData("http://collector:4318/v1/metrics", "http://collector:4318/v1/metrics")]
    public void Otlp_OverHttpProtobuf_TheEndpointIsTheCollectorsBase_AsTheStandardVariableIs(string configured, string posted)
    {
        var configuration = Config(("Gateway:Telemetry:Otlp:Endpoint", configured), ("Gateway:Telemetry:Otlp:Protocol", "HttpProtobuf"));
        var exporter = new OtlpExporterOptions();
        MetricsExport.ConfigureOtlp(configuration.GetSection("Gateway:Telemetry:Otlp"), configuration, exporter, new MetricReaderOptions());
        Assert.Equal(new Uri(posted), exporter.Endpoint);

        configuration = Config(("Gateway:Telemetry:Otlp:Endpoint", configured));
        exporter = new OtlpExporterOptions();
        MetricsExport.ConfigureOtlp(configuration.GetSection("Gateway:Telemetry:Otlp"), configuration, exporter, new MetricReaderOptions());
        Assert.Equal(new Uri(configured), exporter.Endpoint); // gRPC: the service's path is the exporter's own
    }
}
