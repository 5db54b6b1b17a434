using System.Diagnostics.Metrics;
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
    /// <c>kestrel.queued_requests</c> counts HTTP/2 streams waiting for the thread pool: two updates of a series with six
    /// labels on every HTTP/2 request (about 1 % of the gateway's CPU under h2c load; HTTP/1.1 requests do not touch it).
    /// <c>aspnetcore.rate_limiting.active_request_leases</c>, two updates on every request of a rate-limited route, counts
    /// what <c>gateway.proxy.requests.in_flight</c> counts.
    /// </summary>
    public static readonly string[] PerRequestGauges =
    [
        "http.server.active_requests",
        "http.client.active_requests",
        "http.client.open_connections",
        "kestrel.queued_requests",
        "aspnetcore.rate_limiting.active_request_leases",
    ];

    /// <summary>
    /// The platform's request-duration histograms, dropped unless <see cref="TelemetryOptions.PlatformRequestDurations"/>
    /// is set: each records every request a second time beside <c>gateway.proxy.request.duration</c> (the client's side)
    /// and the per-destination figures (the backend's). Dropped, the runtime skips what goes with them: hosting's look-up
    /// of <c>HttpContext.Items</c> at each request's end (a dictionary per request) and <c>HttpClient</c>'s metrics frame
    /// around each backend request.
    /// </summary>
    public static readonly string[] PlatformRequestDurations = ["http.server.request.duration", "http.client.request.duration"];

    /// <summary>
    /// Whether <paramref name="instrument"/> is scraped as a Prometheus gauge (a gauge or an up-down counter, observable
    /// or not): the runtime's <c>dotnet.timer.count</c>, <c>dotnet.thread_pool.thread.count</c> and the like. OpenTelemetry
    /// 1.21 scrapes observable up-down counters as gauges (1.20 wrote them as counters, with <c>_total</c>).
    /// </summary>
    private static bool IsGauge(Instrument instrument)
        => instrument.GetType() is { IsGenericType: true } type
            && type.GetGenericTypeDefinition() is var kind
            && (kind == typeof(ObservableGauge<>) || kind == typeof(Gauge<>) || kind == typeof(ObservableUpDownCounter<>) || kind == typeof(UpDownCounter<>));

    /// <summary>
    /// Meters whose instruments have a handful of tag combinations each (GC generations, connection
    /// states, Polly's events): their streams are given <see cref="SmallCardinalityLimit"/> series
    /// instead of OpenTelemetry's 2,000. The SDK allocates a stream's whole array of points when the
    /// stream is created, about 200 KB at 2,000, whether or not a series ever appears.
    /// </summary>
    private static readonly string[] SmallCardinalityMeters = ["System.Runtime", "Microsoft.AspNetCore.Server.Kestrel", "Microsoft.AspNetCore.RateLimiting", "Polly"];

    /// <summary>
    /// The gateway's own instrument families whose tags are a fixed, short list (a reason, a result)
    /// or none: connections and their admission, the scheduler probes, config reloads, memory
    /// compactions, the PROXY protocol's refusals. A tag that grows with the config (route, cluster, destination) must not be added
    /// to these.
    /// </summary>
    private static readonly string[] SmallCardinalityPrefixes = ["gateway.connections.", "gateway.connection.", "gateway.connection_admission.", "gateway.scheduler.", "gateway.config.", "gateway.memory.", "gateway.output_cache.", "gateway.proxy_protocol.", "gateway.requests."];

    /// <summary>
    /// Labels left out of the exported series of instruments measured per destination or per backend
    /// address. Counters and histograms keep a series for every label set they ever saw, for the
    /// process's life (OpenTelemetry cannot drop one), and per-pod destinations from DNS are new on
    /// every rolling update: tried with 2,100 destinations replaced by one, the request-duration
    /// histogram exported 2,000 series of destinations that were gone (a scrape of 4.3 MB) and folded
    /// the new one into its overflow series. Per destination, the gateway exports observed figures of
    /// the destinations that exist now (<c>gateway.proxy.destination.*</c>), whose series go when they
    /// go. In-process listeners (the tests) still see every tag; the status page records its own per destination.
    /// </summary>
    private static readonly Dictionary<string, string[]> GatewayExcludedTags = new(StringComparer.Ordinal)
    {
        ["gateway.proxy.request.duration"] = ["destination"],
        ["gateway.outlier.ejections"] = ["destination"],
        ["gateway.outlier.reactivations"] = ["destination"],
    };

    /// <summary>HttpClient's labels for the backend's address: one per pod with DNS discovery, as above.</summary>
    private static readonly string[] HttpClientExcludedTags = ["server.address", "server.port", "network.peer.address"];

    /// <summary>Series per stream for <see cref="SmallCardinalityMeters"/> and <see cref="SmallCardinalityPrefixes"/>; past it, OpenTelemetry folds new series into an overflow series.</summary>
    internal const int SmallCardinalityLimit = 100;

    /// <summary>The standard variables that turn OTLP on without any Gateway:Telemetry:Otlp setting.</summary>
    private static readonly string[] OtlpEndpointVariables = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"];

    public static void AddMetricsExport(this IServiceCollection services, IConfiguration configuration)
    {
        var version = typeof(MetricsExport).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
        var section = configuration.GetSection(TelemetryOptions.SectionName);
        var otlp = IsOtlpConfigured(configuration) ? new OtlpExportTarget() : null;
        if (otlp is not null)
        {
            services.AddSingleton(otlp);
            services.AddHostedService<OtlpExportLog>();
        }

        var seriesLimit = new MetricSeriesLimit(MaxSeriesPerMetric(section));
        services.AddSingleton(seriesLimit);
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

                // Read at start; the options validation reports a value that does not convert.
                var platform = new PlatformInstruments(IsOn(section, nameof(TelemetryOptions.PerRequestGauges)), IsOn(section, nameof(TelemetryOptions.PlatformRequestDurations)));
                metrics.AddView(instrument => StreamFor(instrument, platform, seriesLimit.MaxSeries));

                if (otlp is not null)
                {
                    metrics.AddOtlpExporter((exporter, reader) =>
                    {
                        ConfigureOtlp(section.GetSection(nameof(TelemetryOptions.Otlp)), configuration, exporter, reader);
                        otlp.Protocol = exporter.Protocol;
                        otlp.Interval = TimeSpan.FromMilliseconds(reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds ?? 60_000);

                        // The exporter adds the path itself to OTEL_EXPORTER_OTLP_ENDPOINT's URL (HTTP/protobuf only).
                        var added = exporter.Protocol == OtlpExportProtocol.HttpProtobuf
                            && string.IsNullOrWhiteSpace(section[$"{nameof(TelemetryOptions.Otlp)}:{nameof(OtlpOptions.Endpoint)}"])
                            && string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"]);
                        otlp.Endpoint = added ? MetricsUrl(exporter.Endpoint) : exporter.Endpoint;
                    });
                }
            });
    }

    /// <summary>
    /// The one view: every instrument matches at most one stream configuration (two views matching
    /// the same instrument would export it twice). Null keeps OpenTelemetry's default stream.
    /// </summary>
    internal static MetricStreamConfiguration? StreamFor(Instrument instrument, PlatformInstruments platform, int maxSeries = TelemetryOptions.DefaultMaxSeriesPerMetric)
    {
        if ((!platform.PerRequestGauges && PerRequestGauges.Contains(instrument.Name))
            || (!platform.RequestDurations && PlatformRequestDurations.Contains(instrument.Name)))
        {
            return MetricStreamConfiguration.Drop;
        }

        // A gauge named *.count would be scraped as *_count, which Prometheus keeps for histograms
        // (promtool check metrics flags it): scraped as *_count_value. Counters end in _count_total.
        var name = instrument.Name.EndsWith(".count", StringComparison.Ordinal) && IsGauge(instrument) ? instrument.Name + ".value" : null;
        var small = SmallCardinalityMeters.Contains(instrument.Meter.Name)
            || (instrument.Meter.Name == GatewayMeter.Name && SmallCardinalityPrefixes.Any(prefix => instrument.Name.StartsWith(prefix, StringComparison.Ordinal)));
        int? limit = small ? SmallCardinalityLimit : maxSeries == TelemetryOptions.DefaultMaxSeriesPerMetric ? null : maxSeries;
        var excluded = instrument.Meter.Name switch
        {
            GatewayMeter.Name => GatewayExcludedTags.GetValueOrDefault(instrument.Name),
            "System.Net.Http" => HttpClientExcludedTags,
            _ => null,
        };
        return name is null && limit is null && excluded is null ? null : new MetricStreamConfiguration { Name = name, CardinalityLimit = limit, ExcludedTagKeys = excluded };
    }

    private static bool IsOn(IConfiguration telemetry, string key) => bool.TryParse(telemetry[key], out var on) && on;

    /// <summary><c>Gateway:Telemetry:MaxSeriesPerMetric</c> as it is at start (the default when unset; a value that does not convert is the options validation's to report).</summary>
    internal static int MaxSeriesPerMetric(IConfiguration telemetry)
        => int.TryParse(telemetry[nameof(TelemetryOptions.MaxSeriesPerMetric)], System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var value)
            && value is >= TelemetryOptionsValidator.MinSeriesPerMetric and <= TelemetryOptionsValidator.MaxSeriesPerMetricLimit
            ? value
            : TelemetryOptions.DefaultMaxSeriesPerMetric;

    /// <summary>
    /// Where HTTP/protobuf metrics go for a collector at <paramref name="endpoint"/>: its path with <c>v1/metrics</c>
    /// added, unless it ends with that already. OpenTelemetry adds the path for <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>
    /// but not for an endpoint set in code, which it posts to as it is: tried with <c>http://collector:4318</c>,
    /// every export went to <c>/</c>, the collector answered 404, and the metrics were lost without a word.
    /// </summary>
    internal static Uri MetricsUrl(Uri endpoint)
    {
        const string MetricsPath = "v1/metrics";
        var path = endpoint.AbsolutePath;
        if (path.TrimEnd('/').EndsWith("/" + MetricsPath, StringComparison.Ordinal))
        {
            return endpoint;
        }

        return new UriBuilder(endpoint) { Path = path.TrimEnd('/') + "/" + MetricsPath }.Uri;
    }

    /// <summary>On when <c>Gateway:Telemetry:Otlp:Endpoint</c> or a standard <c>OTEL_EXPORTER_OTLP_*ENDPOINT</c> variable is set.</summary>
    internal static bool IsOtlpConfigured(IConfiguration configuration)
        => !string.IsNullOrWhiteSpace(configuration[$"{TelemetryOptions.SectionName}:Otlp:Endpoint"])
            || OtlpEndpointVariables.Any(variable => !string.IsNullOrWhiteSpace(configuration[variable]));

    /// <summary>
    /// The exporter has already read the standard <c>OTEL_EXPORTER_OTLP_*</c> variables; the gateway's
    /// own settings, where set, take precedence. The protocol is what is configured (gRPC unless
    /// told otherwise, as OpenTelemetry's default), never guessed from the port. The endpoint is the
    /// collector's base URL, as <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is: over HTTP/protobuf the metrics
    /// path is added (<see cref="MetricsUrl"/>).
    /// </summary>
    internal static void ConfigureOtlp(IConfigurationSection otlp, IConfiguration configuration, OtlpExporterOptions exporter, MetricReaderOptions reader)
    {
        if (Enum.TryParse<OtlpExportProtocol>(otlp[nameof(OtlpOptions.Protocol)], ignoreCase: true, out var protocol))
        {
            exporter.Protocol = protocol;
        }

        if (Uri.TryCreate(otlp[nameof(OtlpOptions.Endpoint)], UriKind.Absolute, out var endpoint))
        {
            exporter.Endpoint = exporter.Protocol == OtlpExportProtocol.HttpProtobuf ? MetricsUrl(endpoint) : endpoint;
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
