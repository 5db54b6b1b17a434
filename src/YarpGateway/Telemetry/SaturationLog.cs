using System.Globalization;
using YarpGateway.Configuration;
using YarpGateway.Endpoints;

namespace YarpGateway.Telemetry;

/// <summary>
/// One line an operator can grep, every <see cref="TelemetryOptions.SaturationLogInterval"/>:
/// <c>saturation sched_delay_p99_ms=3.2 pending_work_items=12 accepts_per_s=840 closes_per_s=812 active_connections=10234 upgraded=9120 admission_rejected=0 admission_rate=2000 admission_delay_ms=0.4</c>.
/// </summary>
internal sealed partial class SaturationLog(
    ReloadableOptions<TelemetryOptions> options,
    SchedulerDelayProbe probe,
    TrafficCounters traffic,
    Admission.AdmissionMetrics admission,
    TimeProvider timeProvider,
    ILogger<SaturationLog> logger) : IHostedService, IDisposable
{
    private ITimer? _timer;
    private long _lastAccepted;
    private long _lastClosed;
    private long _lastRejected;
    private long _lastTimestamp;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var interval = options.Current.SaturationLogInterval;
        if (interval > TimeSpan.Zero)
        {
            _lastTimestamp = timeProvider.GetTimestamp();
            _timer = timeProvider.CreateTimer(static state => ((SaturationLog)state!).Write(), this, interval, interval);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _timer?.Dispose();
        return Task.CompletedTask;
    }

    internal string Line()
    {
        var now = timeProvider.GetTimestamp();
        var seconds = Math.Max(0.001, timeProvider.GetElapsedTime(_lastTimestamp, now).TotalSeconds);
        var accepted = traffic.AcceptedConnections;
        var closed = traffic.ClosedConnections;
        var rejected = admission.RejectedTotal;
        var line = string.Create(CultureInfo.InvariantCulture,
            $"saturation sched_delay_p99_ms={probe.RecentP99() * 1000:0.0} pending_work_items={ThreadPool.PendingWorkItemCount} threads={ThreadPool.ThreadCount} accepts_per_s={(accepted - _lastAccepted) / seconds:0} closes_per_s={(closed - _lastClosed) / seconds:0} active_connections={traffic.OpenConnections} in_flight={traffic.InFlightRequests} upgraded={traffic.UpgradedConnections} admission_rejected={rejected - _lastRejected} admission_rate={admission.ConnectionRate.Rate:0} admission_delay_ms={admission.ConnectionRate.Delay * 1000:0.0}");
        _lastTimestamp = now;
        _lastAccepted = accepted;
        _lastClosed = closed;
        _lastRejected = rejected;
        return line;
    }

    private void Write() => Log.Saturation(logger, Line());

    public void Dispose() => _timer?.Dispose();

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "{Line}", EventName = "Saturation")]
        public static partial void Saturation(ILogger logger, string line);
    }
}
