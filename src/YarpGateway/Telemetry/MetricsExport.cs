using System.Reflection;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace YarpGateway.Telemetry;

/// <summary>
/// The OpenTelemetry meter provider, from OpenTelemetry.Extensions.Hosting (built when the host
/// starts, flushed and disposed when it stops): the gateway's meter and the platform's own
/// (hosting, Kestrel, runtime, HttpClient, Polly), scraped as Prometheus text or OpenMetrics at
/// <c>/metrics</c> on the management endpoint, and pushed over OTLP when an endpoint is configured.
/// </summary>
internal static class MetricsExport
{
    public static readonly string[] Meters =
    [
        GatewayMeter.Name,
        "Microsoft.AspNetCore.Hosting",
        "Microsoft.AspNetCore.Server.Kestrel",
        "Microsoft.AspNetCore.RateLimiting",
        "System.Runtime",
        "System.Net.Http",
        "Polly",
    ];

    /// <summary>
    /// The platform's instruments updated on every request, dropped unless
    /// <see cref="TelemetryOptions.PerRequestGauges"/> is set. A dropped instrument is never
    /// enabled, so the runtime skips the measurement itself, not only its export.
    /// </summary>
    public static readonly string[] PerRequestGauges =
    [
        "http.server.active_requests",
        "http.client.active_requests",
        "http.client.open_connections",
    ];

    /// <summary>The runtime's gauges whose names end in <c>.count</c>.</summary>
    private static readonly string[] CountGauges = ["dotnet.assembly.count", "dotnet.process.cpu.count", "dotnet.timer.count"];

    /// <summary>The standard variables that turn OTLP on without any Gateway:Telemetry:Otlp setting.</summary>
    private static readonly string[] OtlpEndpointVariables = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"];

    public static void AddMetricsExport(this IServiceCollection services, IConfiguration configuration)
    {
        var version = typeof(MetricsExport).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
        var section = configuration.GetSection(TelemetryOptions.SectionName);
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("yarpgateway", serviceVersion: version, serviceInstanceId: Environment.MachineName))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(Meters);

                // Every scrape reads the current values: no cached response between scrapes.
                // Scope labels (otel_scope_name) left off: every meter names its instruments apart, and the
                // series stay as the alert rules, dashboard and earlier scrapes know them.
                metrics.AddPrometheusExporter(prometheus =>
                {
                    prometheus.ScrapeResponseCacheDurationMilliseconds = 0;
                    prometheus.ScopeInfoEnabled = false;
                });

                // The runtime's gauges named *.count would be scraped as *_count, which Prometheus keeps for
                // histograms (promtool check metrics flags them): scraped as *_count_value, as before.
                foreach (var gauge in CountGauges)
                {
                    metrics.AddView(gauge, gauge + ".value");
                }

                // Read at start; the options validation reports a value that does not convert.
                if (!(bool.TryParse(section[nameof(TelemetryOptions.PerRequestGauges)], out var perRequest) && perRequest))
                {
                    foreach (var instrument in PerRequestGauges)
                    {
                        metrics.AddView(instrument, MetricStreamConfiguration.Drop);
                    }
                }

                if (IsOtlpConfigured(configuration))
                {
                    metrics.AddOtlpExporter((exporter, reader) => ConfigureOtlp(section.GetSection(nameof(TelemetryOptions.Otlp)), configuration, exporter, reader));
                }
            });
    }

    /// <summary>On when <c>Gateway:Telemetry:Otlp:Endpoint</c> or a standard <c>OTEL_EXPORTER_OTLP_*ENDPOINT</c> variable is set.</summary>
    internal static bool IsOtlpConfigured(IConfiguration configuration)
        => !string.IsNullOrWhiteSpace(configuration[$"{TelemetryOptions.SectionName}:Otlp:Endpoint"])
            || OtlpEndpointVariables.Any(variable => !string.IsNullOrWhiteSpace(configuration[variable]));

    /// <summary>
    /// The exporter has already read the standard <c>OTEL_EXPORTER_OTLP_*</c> variables; the gateway's
    /// own settings, where set, take precedence. The protocol is what is configured (gRPC unless
    /// told otherwise, as OpenTelemetry's default), never guessed from the port.
    /// </summary>
    internal static void ConfigureOtlp(IConfigurationSection otlp, IConfiguration configuration, OtlpExporterOptions exporter, MetricReaderOptions reader)
    {
        if (Uri.TryCreate(otlp[nameof(OtlpOptions.Endpoint)], UriKind.Absolute, out var endpoint))
        {
            exporter.Endpoint = endpoint;
        }

        if (Enum.TryParse<OtlpExportProtocol>(otlp[nameof(OtlpOptions.Protocol)], ignoreCase: true, out var protocol))
        {
            exporter.Protocol = protocol;
        }

        if (TimeSpan.TryParse(otlp[nameof(OtlpOptions.ExportInterval)], System.Globalization.CultureInfo.InvariantCulture, out var interval))
        {
            reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = (int)interval.TotalMilliseconds;
        }
        else if (string.IsNullOrWhiteSpace(configuration["OTEL_METRIC_EXPORT_INTERVAL"]))
        {
            reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = (int)new OtlpOptions().ExportInterval.TotalMilliseconds;
        }
    }
}
