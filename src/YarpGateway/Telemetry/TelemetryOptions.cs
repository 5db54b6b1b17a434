using YarpGateway.Configuration;

namespace YarpGateway.Telemetry;

/// <summary>Options under <c>Gateway:Telemetry</c>.</summary>
internal sealed class TelemetryOptions
{
    public const string SectionName = "Gateway:Telemetry";

    /// <summary>How often the scheduler probe queues a work item to the thread pool. Default 100 ms.</summary>
    public TimeSpan SchedulerProbeInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>How often the <c>saturation</c> log line is written; 0 turns it off. Default 10 s.</summary>
    public TimeSpan SaturationLogInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// One <c>access</c> line per request on the proxy endpoint, written as it ends (<see cref="AccessLog"/>). Default
    /// false: the gateway's own log says what changed, not what each request did. Live: an operator turns it on while a
    /// problem is there, without a restart that would end it.
    /// </summary>
    public bool AccessLog { get; set; }

    /// <summary>The default of <see cref="RequestIdHeader"/>.</summary>
    public const string DefaultRequestIdHeader = "X-Request-ID";

    /// <summary>
    /// Whether every request on the proxy endpoint carries an id to its backend in <see cref="RequestIdHeader"/>, and its
    /// answer the same id back (<see cref="Telemetry.RequestId"/>): one the request brings is kept when well formed, else
    /// a new one is made. Default false (nginx and HAProxy add none unless told; Envoy does). Live.
    /// </summary>
    public bool RequestId { get; set; }

    /// <summary>
    /// The header of the request id (<see cref="RequestId"/>), also the one the access log's <c>id</c> reads when
    /// <see cref="RequestId"/> is off (an id an ingress in front set). Default <c>X-Request-ID</c>. Live.
    /// </summary>
    public string RequestIdHeader { get; set; } = DefaultRequestIdHeader;

    /// <summary>
    /// Whether the platform's gauges that change on every request are exported:
    /// <c>http.server.active_requests</c>, <c>http.client.active_requests</c>,
    /// <c>http.client.open_connections</c>, for HTTP/2 <c>kestrel.queued_requests</c>, and on rate-limited routes
    /// <c>aspnetcore.rate_limiting.active_request_leases</c>. Default false: they cost about 4 % of the CPU per request
    /// (eight updates of multi-label series per request, two more per HTTP/2 request or rate-limited request),
    /// and <c>gateway.proxy.requests.in_flight</c> and <c>gateway.proxy.destination.in_flight</c> count the same requests
    /// without a per-request update (<c>gateway.scheduler.delay</c> and <c>gateway.scheduler.pending_work_items</c> the
    /// thread pool's queue). Read at start.
    /// </summary>
    public bool PerRequestGauges { get; set; }

    /// <summary>
    /// Whether the platform's request-duration histograms are exported: ASP.NET Core's <c>http.server.request.duration</c>
    /// and <c>HttpClient</c>'s <c>http.client.request.duration</c>. Default false: a proxied request is already recorded
    /// once in <c>gateway.proxy.request.duration</c> (by route, cluster and status class) and in the per-destination
    /// figures, and the two platform histograms cost 232 bytes and two histogram updates per proxied request (hosting
    /// then looks up <c>HttpContext.Items</c> at each request's end, <c>HttpClient</c> keeps a frame of its own around each
    /// backend request). Requests answered without reaching a proxy route are counted by status in <c>gateway.requests.not_proxied</c> either way.
    /// Read at start.
    /// </summary>
    public bool PlatformRequestDurations { get; set; }

    /// <summary>
    /// Kestrel's per-connection log events (HTTP/2 and HTTP/3 protocol errors, rejected connections,
    /// bad requests) at most once a second per kind, with a count of the rest, instead of one line
    /// per event (a hostile client can make tens of thousands a second). Default true. Read at start.
    /// </summary>
    public bool ThrottleKestrelLogs { get; set; } = true;

    /// <summary>OpenTelemetry's own limit: series per metric, past which new label sets go to one overflow series.</summary>
    public const int DefaultMaxSeriesPerMetric = 2000;

    /// <summary>
    /// Series each metric labelled by route, cluster or destination keeps (the request durations, admission's
    /// limits and queues, retries, errors, the per-destination figures): past it, OpenTelemetry folds further
    /// label sets into one series labelled <c>otel_metric_overflow="true"</c>, whose labels say nothing. Each
    /// such metric sets aside about 72 bytes per series when it is created (about 40 metrics: 5.5 MB at the
    /// default 2,000, 27 MB at 10,000). Between 100 and 100,000. Default 2,000. Read at start.
    /// </summary>
    public int MaxSeriesPerMetric { get; set; } = DefaultMaxSeriesPerMetric;

    /// <summary>OTLP push, in addition to the /metrics scrape endpoint.</summary>
    public OtlpOptions Otlp { get; set; } = new();
}

/// <summary>
/// Options under <c>Gateway:Telemetry:Otlp</c>. The standard <c>OTEL_EXPORTER_OTLP_*</c> variables work
/// as well (endpoint, protocol, headers, timeout); a setting here takes precedence over its variable.
/// </summary>
internal sealed class OtlpOptions
{
    /// <summary>
    /// The collector's base URL, e.g. http://otel-collector:4317 (over HTTP/protobuf, http://otel-collector:4318, to which
    /// <c>/v1/metrics</c> is added as for <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>); none (default) leaves OTLP off unless
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set.
    /// </summary>
    public Uri? Endpoint { get; set; }

    /// <summary><c>Grpc</c> or <c>HttpProtobuf</c>. Default: <c>OTEL_EXPORTER_OTLP_PROTOCOL</c>, else gRPC. Never guessed from the port.</summary>
    public OpenTelemetry.Exporter.OtlpExportProtocol? Protocol { get; set; }

    /// <summary>How often metrics are pushed. Default 15 s.</summary>
    public TimeSpan ExportInterval { get; set; } = TimeSpan.FromSeconds(15);
}

/// <summary>Start-up checks for <see cref="TelemetryOptions"/>.</summary>
internal sealed class TelemetryOptionsValidator : Microsoft.Extensions.Options.IValidateOptions<TelemetryOptions>
{
    internal const int MinSeriesPerMetric = 100;
    internal const int MaxSeriesPerMetricLimit = 100_000;

    /// <summary>Headers a request id must not replace: framing, routing, credentials, and the trace context.</summary>
    internal static readonly HashSet<string> ReservedRequestIdHeaders = new(
        ["Host", "Connection", "Content-Length", "Content-Type", "Transfer-Encoding", "Upgrade", "Keep-Alive", "TE", "Trailer",
         "Proxy-Connection", "Cookie", "Set-Cookie", "Authorization", "Location", "Traceparent", "Tracestate",
         "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Prefix", "X-Real-IP", "Forwarded"],
        StringComparer.OrdinalIgnoreCase);

    public Microsoft.Extensions.Options.ValidateOptionsResult Validate(string? name, TelemetryOptions options)
    {
        var errors = new List<string>();
        if (options.SchedulerProbeInterval < TimeSpan.FromMilliseconds(10))
        {
            errors.Add($"{TelemetryOptions.SectionName}:SchedulerProbeInterval must be at least 00:00:00.010; got {options.SchedulerProbeInterval}.");
        }

        if (options.SaturationLogInterval < TimeSpan.Zero)
        {
            errors.Add($"{TelemetryOptions.SectionName}:SaturationLogInterval must not be negative (0 turns it off); got {options.SaturationLogInterval}.");
        }

        if (options.MaxSeriesPerMetric is < MinSeriesPerMetric or > MaxSeriesPerMetricLimit)
        {
            errors.Add($"{TelemetryOptions.SectionName}:MaxSeriesPerMetric must be between {MinSeriesPerMetric} and {MaxSeriesPerMetricLimit}; got {options.MaxSeriesPerMetric}.");
        }

        if (!HttpSyntax.IsToken(options.RequestIdHeader))
        {
            errors.Add($"{TelemetryOptions.SectionName}:RequestIdHeader must be a header name ({HttpSyntax.TokenCharacters}); got '{options.RequestIdHeader}'.");
        }
        else if (ReservedRequestIdHeaders.Contains(options.RequestIdHeader))
        {
            errors.Add($"{TelemetryOptions.SectionName}:RequestIdHeader must not be {options.RequestIdHeader}, which HTTP or the gateway gives a meaning of its own; X-Request-ID is the usual one.");
        }

        // A relative one ("nonsense") threw here, and the error said only "This operation is not supported for a relative URI".
        if (options.Otlp.Endpoint is { } endpoint && (!endpoint.IsAbsoluteUri || endpoint.Scheme is not ("http" or "https")))
        {
            errors.Add($"{TelemetryOptions.SectionName}:Otlp:Endpoint must be an absolute http or https URL (http://otel-collector:4317); got {endpoint.OriginalString}.");
        }

        if (options.Otlp.ExportInterval < TimeSpan.FromSeconds(1))
        {
            errors.Add($"{TelemetryOptions.SectionName}:Otlp:ExportInterval must be at least 1 s; got {options.Otlp.ExportInterval}.");
        }

        return errors.Count == 0 ? Microsoft.Extensions.Options.ValidateOptionsResult.Success : Microsoft.Extensions.Options.ValidateOptionsResult.Fail(errors);
    }
}
