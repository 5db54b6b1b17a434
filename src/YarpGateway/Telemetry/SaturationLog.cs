using System.Globalization;
using YarpGateway.Configuration;
using YarpGateway.Endpoints;

namespace YarpGateway.Telemetry;

/// <summary>
/// One line an operator can grep, every <see cref="TelemetryOptions.SaturationLogInterval"/>:
/// <c>saturation sched_delay_p99_ms=3.2 pending_work_items=12 accepts_per_s=840 closes_per_s=812 active_connections=10234 upgraded=9120 admission_rejected=0 admission_rate=2000 admission_delay_ms=0.4</c>.
/// <para>
/// While nothing moves (no connection accepted, closed or refused, no request in flight, no work queued, the same open and
/// upgraded connections and admission rate as the last line, the scheduler delay under <see cref="QuietDelay"/>), one line
/// says so and the next ones are not written: an idle pod wrote 8,640 lines a day that said nothing had changed, which
/// log pipelines bill by the line.
/// </para>
/// </summary>
internal sealed partial class SaturationLog(
    ReloadableOptions<TelemetryOptions> options,
    SchedulerDelayProbe probe,
    TrafficCounters traffic,
    Admission.AdmissionMetrics admission,
    TimeProvider timeProvider,
    ILogger<SaturationLog> logger) : IHostedService, IDisposable
{
    /// <summary>A scheduler delay under which an interval with no traffic counts as quiet.</summary>
    internal static readonly TimeSpan QuietDelay = TimeSpan.FromMilliseconds(5);

    private ITimer? _timer;
    private TimeSpan _interval;
    private long _lastAccepted;
    private long _lastClosed;
    private long _lastRejected;
    private long _lastTimestamp;
    private long _lastOpen;
    private long _lastUpgraded;
    private double _lastRate;
    private bool _quietWritten;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _lastRate = admission.ConnectionRate.Rate;
        _lastTimestamp = timeProvider.GetTimestamp();
        _interval = options.Current.SaturationLogInterval;
        _timer = timeProvider.CreateTimer(static state => ((SaturationLog)state!).Write(), this, Period(_interval), Period(_interval));
        options.Changed += OnOptionsChanged;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        options.Changed -= OnOptionsChanged;
        _timer?.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>
    /// A live edit of the interval (or 0, off) takes effect at once; until 2026-12-07 the timer kept the interval it started
    /// with while the reload's line said the new one applied.
    /// </summary>
    private void OnOptionsChanged(TelemetryOptions changed)
    {
        if (changed.SaturationLogInterval != _interval && _timer is { } timer)
        {
            _interval = changed.SaturationLogInterval;
            timer.Change(Period(_interval), Period(_interval));
        }
    }

    private static TimeSpan Period(TimeSpan interval) => interval > TimeSpan.Zero ? interval : Timeout.InfiniteTimeSpan;

    /// <summary>The line for the interval since the last call; null for a quiet interval after one that was written as quiet.</summary>
    internal string? Line()
    {
        var now = timeProvider.GetTimestamp();
        var seconds = Math.Max(0.001, timeProvider.GetElapsedTime(_lastTimestamp, now).TotalSeconds);
        var accepted = traffic.AcceptedConnections;
        var closed = traffic.ClosedConnections;
        var rejected = admission.RejectedTotal;
        var delay = probe.RecentP99();
        var pending = ThreadPool.PendingWorkItemCount;
        var open = traffic.OpenConnections;
        var inFlight = traffic.InFlightRequests;
        var upgraded = traffic.UpgradedConnections;
        var rate = admission.ConnectionRate.Rate;
        var quiet = accepted == _lastAccepted && closed == _lastClosed && rejected == _lastRejected && inFlight == 0 && pending == 0
            && open == _lastOpen && upgraded == _lastUpgraded && rate == _lastRate && delay < QuietDelay.TotalSeconds;
        var skip = quiet && _quietWritten;
        var line = skip ? null : string.Create(CultureInfo.InvariantCulture,
            $"saturation sched_delay_p99_ms={delay * 1000:0.0} pending_work_items={pending} threads={ThreadPool.ThreadCount} accepts_per_s={(accepted - _lastAccepted) / seconds:0} closes_per_s={(closed - _lastClosed) / seconds:0} active_connections={open} in_flight={inFlight} upgraded={upgraded} admission_rejected={rejected - _lastRejected} admission_rate={rate:0} admission_delay_ms={admission.ConnectionRate.Delay * 1000:0.0}");
        _lastTimestamp = now;
        _lastAccepted = accepted;
        _lastClosed = closed;
        _lastRejected = rejected;
        _lastOpen = open;
        _lastUpgraded = upgraded;
        _lastRate = rate;
        _quietWritten = quiet;
        return line;
    }

    private void Write()
    {
        if (Line() is { } line)
        {
            Log.Saturation(logger, line);
        }
    }

    public void Dispose()
    {
        options.Changed -= OnOptionsChanged;
        _timer?.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "{Line}", EventName = "Saturation")]
        public static partial void Saturation(ILogger logger, string line);
    }
}
