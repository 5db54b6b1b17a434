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
}
