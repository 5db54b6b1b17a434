using System.Reflection;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using YarpGateway.Configuration;
using YarpGateway.Telemetry.Prometheus;

namespace YarpGateway.Telemetry;

/// <summary>
/// The OpenTelemetry meter provider, built with the core SDK (OpenTelemetry.Extensions.Hosting is
/// not in the package registry) and tied to the host: built at start, flushed and disposed at stop.
/// It reads the gateway's meter and the platform's own (hosting, Kestrel, runtime, HttpClient,
/// Polly), serves them to the /metrics scrape and, when configured, pushes them over OTLP.
/// </summary>
internal sealed class GatewayMeterProvider : IHostedService, IDisposable
{
    public static readonly string[] Meters =
    [
        GatewayMetrics.MeterName,
        "Microsoft.AspNetCore.Hosting",
        "Microsoft.AspNetCore.Server.Kestrel",
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

    private readonly PrometheusPullExporter _prometheus;
    private readonly ReloadableOptions<TelemetryOptions> _options;
    private MeterProvider? _provider;

    public GatewayMeterProvider(PrometheusPullExporter prometheus, ReloadableOptions<TelemetryOptions> options)
    {
        _prometheus = prometheus;
        _options = options;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var options = _options.Current;
        var version = typeof(GatewayMeterProvider).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
        var builder = Sdk.CreateMeterProviderBuilder()
            .ConfigureResource(resource => resource.AddService("yarpgateway", serviceVersion: version, serviceInstanceId: Environment.MachineName))
            .AddMeter(Meters)
            .AddReader(_prometheus.Reader);

        if (!options.PerRequestGauges)
        {
            foreach (var instrument in PerRequestGauges)
            {
                builder.AddView(instrument, MetricStreamConfiguration.Drop);
            }
        }

        if (options.Otlp.Endpoint is { } endpoint)
        {
            builder.AddOtlpExporter((exporter, reader) =>
            {
                exporter.Endpoint = endpoint;
                exporter.Protocol = endpoint.Port == 4318 ? OtlpExportProtocol.HttpProtobuf : OtlpExportProtocol.Grpc;
                reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = (int)options.Otlp.ExportInterval.TotalMilliseconds;
            });
        }

        _provider = builder.Build();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _provider?.ForceFlush(2000);
        return Task.CompletedTask;
    }

    public void Dispose() => _provider?.Dispose();
}
