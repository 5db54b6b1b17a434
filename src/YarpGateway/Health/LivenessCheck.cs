using System.Diagnostics.Metrics;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using YarpGateway.Configuration;
using YarpGateway.Endpoints;
using YarpGateway.Telemetry;

namespace YarpGateway.Health;

/// <summary>
/// <c>/healthz/live</c>: the process answers, and it is not wedged. Wedged means either that the
/// proxy endpoint has taken no new connection for <see cref="HealthOptions.LiveRefusingConnectionsFor"/>
/// while clients kept arriving (refused at Kestrel's connection cap, or waiting in the listen queue
/// while accept stays paused, but not while the open connections' limit holds accept back), or that
/// the scheduler is pathologically late
/// (<see cref="HealthOptions.LiveMaxSchedulerDelay"/>). A restart is then the only help; readiness
/// would only move the problem. Never depends on backends. Kestrel's refusals are read from its own
/// <c>kestrel.rejected_connections</c> counter, the listen queue from <see cref="ProxyListenQueue"/>;
/// paced accept takes a connection at least every few milliseconds at the lowest rate, so only a
/// stalled accept waits that long.
/// </summary>
internal sealed class LivenessCheck : IHealthCheck, IDisposable
{
    private readonly TrafficCounters _traffic;
    private readonly ProxyListenQueue _listenQueue;
    private readonly OpenConnectionLimit _openLimit;
    private readonly Memory.MemoryPressure _memory;
    private readonly SchedulerDelayProbe _probe;
    private readonly ReloadableOptions<HealthOptions> _options;
    private readonly TimeProvider _timeProvider;
    private readonly MeterListener _listener = new();
    private readonly Lock _lock = new();
    private long _rejected;
    private long _seenAccepted = -1;
    private long _seenRejected;
    private long _refusingSince;
    private long _lastRefusalSeen;

    public LivenessCheck(TrafficCounters traffic, ProxyListenQueue listenQueue, OpenConnectionLimit openLimit, Memory.MemoryPressure memory, SchedulerDelayProbe probe, ReloadableOptions<HealthOptions> options, TimeProvider timeProvider, IMeterFactory meterFactory)
    {
        _traffic = traffic;
        _listenQueue = listenQueue;
        _openLimit = openLimit;
        _memory = memory;
        _probe = probe;
        _options = options;
        _timeProvider = timeProvider;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Name == "kestrel.rejected_connections" && ReferenceEquals(instrument.Meter.Scope, meterFactory))
            {
                listener.EnableMeasurementEvents(instrument, this);
            }
        };
        _listener.SetMeasurementEventCallback<long>(static (_, value, _, state) => Interlocked.Add(ref ((LivenessCheck)state!)._rejected, value));
        _listener.Start();
    }

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var options = _options.Current;
        var median = TimeSpan.FromSeconds(_probe.RecentMedian());
        var stalled = _probe.SinceLastRun();
        if (median > options.LiveMaxSchedulerDelay || stalled > options.LiveMaxSchedulerDelay)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy(
                $"the scheduler is wedged: median thread-pool delay {median.TotalMilliseconds:F0} ms, next probe {stalled.TotalMilliseconds:F0} ms late (limit {options.LiveMaxSchedulerDelay}, Gateway:Health:LiveMaxSchedulerDelay)"));
        }

        if (RefusingFor() is { } refusing && refusing.For >= options.LiveRefusingConnectionsFor)
        {
            var how = refusing.Queued > 0
                ? $"while {refusing.Queued} wait in its listen queue"
                : "and refused every one at its connection cap";
            return Task.FromResult(HealthCheckResult.Unhealthy(
                $"the proxy endpoint has taken no new connection for {refusing.For.TotalSeconds:F1} s {how} (Gateway:Health:LiveRefusingConnectionsFor {options.LiveRefusingConnectionsFor})"));
        }

        return Task.FromResult(HealthCheckResult.Healthy("serving requests"));
    }

    // How long new connections have come (refused, or waiting in the listen queue) with none accepted,
    // as seen by the probes, and how many wait now; null while some are accepted. A gateway at its
    // open connections' limit accepts nothing by design: it is full, not wedged, and a restart would
    // drop every connection it serves (onto the other replicas, filling them in turn). The same holds while
    // the GC heap is near the runtime's limit (MemoryPressure).
    private (TimeSpan For, long Queued)? RefusingFor()
    {
        var now = _timeProvider.GetTimestamp();
        var accepted = _traffic.AcceptedConnections;
        var rejected = Interlocked.Read(ref _rejected);
        var queued = _listenQueue.Read().Waiting;
        var full = (_openLimit.Limit is { } limit && _openLimit.Open >= limit) || _memory.IsHigh;
        lock (_lock)
        {
            if (full)
            {
                _refusingSince = 0;
                return null;
            }

            if (accepted != _seenAccepted)
            {
                _seenAccepted = accepted;
                _refusingSince = 0;
            }

            if (rejected != _seenRejected || queued > 0)
            {
                _seenRejected = rejected;
                _lastRefusalSeen = now;
                if (_refusingSince == 0)
                {
                    _refusingSince = now;
                }
            }

            // A streak ends when connections are accepted again, or when nobody has been refused for a while.
            if (_refusingSince == 0 || _timeProvider.GetElapsedTime(_lastRefusalSeen, now) > _options.Current.LiveRefusingConnectionsFor)
            {
                return null;
            }

            return (_timeProvider.GetElapsedTime(_refusingSince, now), queued);
        }
    }

    public void Dispose() => _listener.Dispose();
}
