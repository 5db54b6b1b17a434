using System.Diagnostics.Tracing;
using OpenTelemetry.Exporter;

namespace YarpGateway.Telemetry;

/// <summary>
/// What becomes of OTLP push, in the gateway's log. OpenTelemetry's exporter reports a failed export only on its
/// event source, so a collector that is down, unreachable or answering 404 lost every export without a line
/// anywhere. Here: one line at start saying where metrics go; the first failure at once, with its reason; while
/// failures go on, one line every <see cref="RepeatEvery"/> with their count; and one line when exports have
/// gone quiet for two intervals after a failure, which is the exporter working again (it exports every
/// interval, and reports every failure).
/// </summary>
internal sealed partial class OtlpExportLog : IHostedService, IDisposable
{
    /// <summary>How often a failure that goes on is logged again.</summary>
    internal static readonly TimeSpan RepeatEvery = TimeSpan.FromMinutes(5);

    private const string ExporterSource = "OpenTelemetry-Exporter-OpenTelemetryProtocol";

    private readonly OtlpExportTarget _target;
    private readonly TimeProvider _timeProvider;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly ILogger<OtlpExportLog> _logger;
    private readonly Lock _lock = new();
    private Listener? _listener;
    private ITimer? _timer;
    private CancellationTokenRegistration _started;
    private DateTimeOffset? _failingSince;
    private DateTimeOffset _lastFailure;
    private DateTimeOffset _lastLine;
    private long _failures;

    public OtlpExportLog(OtlpExportTarget target, TimeProvider timeProvider, IHostApplicationLifetime lifetime, ILogger<OtlpExportLog> logger)
    {
        _target = target;
        _timeProvider = timeProvider;
        _lifetime = lifetime;
        _logger = logger;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _listener = new Listener(this);
        _started = _lifetime.ApplicationStarted.Register(static state =>
        {
            var self = (OtlpExportLog)state!;
            Log.ExportOn(self._logger, self._target.Protocol, self._target.Endpoint?.ToString() ?? "(none)", self._target.Interval);
            self._timer = self._timeProvider.CreateTimer(static s => ((OtlpExportLog)s!).Check(), self, self._target.Interval, self._target.Interval);
        }, this);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>An export attempt failed, as the exporter reported it.</summary>
    internal void Failed(string endpoint, string error)
    {
        var now = _timeProvider.GetUtcNow();
        lock (_lock)
        {
            _failures++;
            _lastFailure = now;
            if (_failingSince is null)
            {
                _failingSince = now;
                _lastLine = now;
                Log.ExportFailed(_logger, endpoint, error, RepeatEvery.TotalMinutes);
                return;
            }

            if (now - _lastLine >= RepeatEvery)
            {
                Log.StillFailing(_logger, endpoint, _failures, _failingSince.Value, error);
                _lastLine = now;
            }
        }
    }

    /// <summary>Run every export interval: two intervals without a failure after one is the exporter working again.</summary>
    internal void Check()
    {
        var now = _timeProvider.GetUtcNow();
        lock (_lock)
        {
            if (_failingSince is { } since && now - _lastFailure > 2 * _target.Interval)
            {
                Log.Recovered(_logger, _target.Endpoint?.ToString() ?? "(none)", _failures, _lastFailure - since);
                _failingSince = null;
                _failures = 0;
            }
        }
    }

    /// <summary>The first line of an exception's text, without its type's namespace-qualified name.</summary>
    internal static string Describe(string exception)
    {
        var line = exception.AsSpan();
        if (line.IndexOfAny('\r', '\n') is var end and >= 0)
        {
            line = line[..end];
        }

        // "System.Net.Http.HttpRequestException: Connection refused (collector:4317)" -> the message
        if (line.IndexOf(": ", StringComparison.Ordinal) is var colon and > 0 && !line[..colon].Contains(' ') && line[..colon].Contains('.'))
        {
            line = line[(colon + 2)..];
        }

        return line.ToString();
    }

    public void Dispose()
    {
        _started.Dispose();
        _timer?.Dispose();
        _listener?.Dispose();
    }

    /// <summary>Listens to the exporter's event source for what it reports of failed exports.</summary>
    private sealed class Listener : EventListener
    {
        // Set after the base constructor, which may already have called OnEventSourceCreated; events are not
        // read before it is set.
        private readonly OtlpExportLog? _owner;

        public Listener(OtlpExportLog owner) => _owner = owner;

        protected override void OnEventSourceCreated(EventSource eventSource)
        {
            if (eventSource.Name == ExporterSource)
            {
                EnableEvents(eventSource, EventLevel.Warning);
            }
        }

        protected override void OnEventWritten(EventWrittenEventArgs eventData)
        {
            if (_owner is null || eventData.PayloadNames is not { } names || eventData.Payload is not { } payload)
            {
                return;
            }

            string? endpoint = null, error = null;
            for (var i = 0; i < names.Count && i < payload.Count; i++)
            {
                switch (names[i])
                {
                    case "endpoint" or "rawCollectorUri": endpoint = payload[i] as string; break;
                    case "ex" or "exceptionMessage": error = payload[i] as string; break;
                }
            }

            if (error is not null)
            {
                _owner.Failed(endpoint ?? _owner._target.Endpoint?.ToString() ?? "(none)", Describe(error));
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Metrics are pushed over OTLP ({Protocol}) to {Endpoint} every {Interval}, besides /metrics.", EventName = "OtlpExportOn")]
        public static partial void ExportOn(ILogger logger, OtlpExportProtocol protocol, string endpoint, TimeSpan interval);

        [LoggerMessage(2, LogLevel.Warning, "OTLP export of metrics to {Endpoint} failed: {Error}. That export's metrics are lost (/metrics is not affected); while exports fail this is logged again every {RepeatMinutes} minutes.", EventName = "OtlpExportFailed")]
        public static partial void ExportFailed(ILogger logger, string endpoint, string error, double repeatMinutes);

        [LoggerMessage(3, LogLevel.Warning, "OTLP export of metrics to {Endpoint} still fails: {Failures} failed attempts since {Since:u}; the last: {Error}.", EventName = "OtlpExportStillFailing")]
        public static partial void StillFailing(ILogger logger, string endpoint, long failures, DateTimeOffset since, string error);

        [LoggerMessage(4, LogLevel.Information, "OTLP export of metrics to {Endpoint} works again, after {Failures} failed attempts over {Duration}.", EventName = "OtlpExportRecovered")]
        public static partial void Recovered(ILogger logger, string endpoint, long failures, TimeSpan duration);
    }
}

/// <summary>Where OTLP push goes, as the exporter was configured (<see cref="MetricsExport.ConfigureOtlp"/>), for <see cref="OtlpExportLog"/>.</summary>
internal sealed class OtlpExportTarget
{
    public Uri? Endpoint { get; set; }

    public OtlpExportProtocol Protocol { get; set; }

    public TimeSpan Interval { get; set; } = new OtlpOptions().ExportInterval;
}
