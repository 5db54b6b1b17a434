using System.Diagnostics.Metrics;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using YarpGateway.Telemetry.Prometheus;

namespace YarpGateway.Tests.Telemetry;

public class PrometheusTextWriterTests
{
    // A meter of its own per test, a fixed resource, our exporter: the whole scrape is deterministic.
    private static async Task<string> ScrapeAsync(Action<Meter> record)
    {
        using var meter = new Meter("Test." + Guid.NewGuid().ToString("N"));
        using var exporter = new PrometheusPullExporter();
        using var provider = Sdk.CreateMeterProviderBuilder()
            .ConfigureResource(r => r.Clear().AddAttributes([new("service.name", "svc\"1")]))
            .AddMeter(meter.Name)
            .AddReader(exporter.Reader)
            .Build();
        record(meter);
        return await exporter.ScrapeAsync(CancellationToken.None);
    }

    private const string TargetInfo = "# HELP target_info Target metadata\n# TYPE target_info gauge\ntarget_info{service_name=\"svc\\\"1\"} 1\n";

    [Fact]
    public async Task Counter_GetsTotal_UnitAnnotationDropped_LabelValuesEscaped()
    {
        var text = await ScrapeAsync(meter =>
        {
            var counter = meter.CreateCounter<long>("gateway.test.requests", unit: "{request}", description: "Requests, with a \\ and a\nnewline.");
            counter.Add(3, new KeyValuePair<string, object?>("route", "a\"b\\c\nd"));
            counter.Add(2, new KeyValuePair<string, object?>("route.id", "plain"));
        });

        Assert.Equal(TargetInfo
            + "# HELP gateway_test_requests_total Requests, with a \\\\ and a\\nnewline.\n"
            + "# TYPE gateway_test_requests_total counter\n"
            + "gateway_test_requests_total{route=\"a\\\"b\\\\c\\nd\"} 3\n"
            + "gateway_test_requests_total{route_id=\"plain\"} 2\n", text);
    }

    [Fact]
    public async Task Histogram_InSeconds_HasCumulativeBucketsSumAndCount()
    {
        var text = await ScrapeAsync(meter =>
        {
            var histogram = meter.CreateHistogram("gateway.test.delay", unit: "s", description: "Delay.", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.1] });
            histogram.Record(0.005);
            histogram.Record(0.05);
            histogram.Record(0.05);
            histogram.Record(3);
        });

        Assert.Equal(TargetInfo
            + "# HELP gateway_test_delay_seconds Delay.\n"
            + "# TYPE gateway_test_delay_seconds histogram\n"
            + "gateway_test_delay_seconds_bucket{le=\"0.01\"} 1\n"
            + "gateway_test_delay_seconds_bucket{le=\"0.1\"} 3\n"
            + "gateway_test_delay_seconds_bucket{le=\"+Inf\"} 4\n"
            + "gateway_test_delay_seconds_sum 3.105\n"
            + "gateway_test_delay_seconds_count 4\n", text);
    }

    [Fact]
    public async Task GaugesAndUpDownCounters_AreGauges_BytesUnit_ReservedSuffixAvoided()
    {
        var text = await ScrapeAsync(meter =>
        {
            meter.CreateObservableGauge("gateway.test.buffered", () => 1024L, unit: "By", description: "Buffered.");
            meter.CreateUpDownCounter<long>("gateway.test.open", unit: "{connection}", description: "Open.").Add(-2);
            meter.CreateObservableGauge("dotnet.test.count", () => 7, description: "A gauge named like a histogram part.");
        });

        Assert.Equal(TargetInfo
            + "# HELP gateway_test_buffered_bytes Buffered.\n# TYPE gateway_test_buffered_bytes gauge\ngateway_test_buffered_bytes 1024\n"
            + "# HELP gateway_test_open Open.\n# TYPE gateway_test_open gauge\ngateway_test_open -2\n"
            + "# HELP dotnet_test_count_value A gauge named like a histogram part.\n# TYPE dotnet_test_count_value gauge\ndotnet_test_count_value 7\n", text);
    }

    [Fact]
    public async Task EmptyMeter_WritesOnlyTargetInfo()
    {
        var text = await ScrapeAsync(meter =>
        {
            meter.CreateCounter<long>("gateway.test.never");
            meter.CreateHistogram<double>("gateway.test.never.recorded", unit: "s");
        });

        Assert.Equal(TargetInfo, text);
    }

    [Theory]
    [InlineData("gateway.scheduler.delay", "s", false, "gateway_scheduler_delay_seconds")]
    [InlineData("gateway.connections.accepted", "{connection}", true, "gateway_connections_accepted_total")]
    [InlineData("http.server.request.duration", "s", false, "http_server_request_duration_seconds")]
    [InlineData("process.memory", "By", false, "process_memory_bytes")]
    [InlineData("cpu.utilization", "1", false, "cpu_utilization_ratio")]
    [InlineData("requests.total", null, true, "requests_total")]
    [InlineData("9lives", "ms", false, "_9lives_milliseconds")]
    [InlineData("a-b/c", "", false, "a_b_c")]
    public void Names_FollowOpenTelemetryToPrometheusRules(string name, string? unit, bool counter, string expected)
        => Assert.Equal(expected, PrometheusNames.Metric(name, unit, counter));
}
