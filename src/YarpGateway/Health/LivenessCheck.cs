using System.Diagnostics.Metrics;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using YarpGateway.Configuration;
using YarpGateway.Endpoints;
using YarpGateway.Telemetry;

namespace YarpGateway.Health;

/// <summary>
/// <c>/healthz/live</c>: the process answers, and it is not wedged. Wedged means either that the
/// proxy endpoint has refused every new connection for <see cref="HealthOptions.LiveRefusingConnectionsFor"/>
/// (at Kestrel's connection cap, with nothing accepted meanwhile), or that the scheduler is
/// pathologically late (<see cref="HealthOptions.LiveMaxSchedulerDelay"/>). A restart is then the
/// only help; readiness would only move the problem. Never depends on backends.
/// Kestrel's refusals are read from its own <c>kestrel.rejected_connections</c> counter.
/// </summary>
internal sealed class LivenessCheck : IHealthCheck, IDisposable
{
    private readonly TrafficCounters _traffic;
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

    public LivenessCheck(TrafficCounters traffic, SchedulerDelayProbe probe, ReloadableOptions<HealthOptions> options, TimeProvider timeProvider, IMeterFactory meterFactory)
    {
        _traffic = traffic;
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

        if (RefusingFor() is { } refusing && refusing >= options.LiveRefusingConnectionsFor)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy(
                $"the proxy endpoint has refused every new connection for {refusing.TotalSeconds:F0} s at its connection cap (Gateway:Health:LiveRefusingConnectionsFor {options.LiveRefusingConnectionsFor})"));
        }

        return Task.FromResult(HealthCheckResult.Healthy("serving requests"));
    }

    // How long every new connection has been refused, as seen by the probes; null while some are accepted.
    private TimeSpan? RefusingFor()
    {
        var now = _timeProvider.GetTimestamp();
        var accepted = _traffic.AcceptedConnections;
        var rejected = Interlocked.Read(ref _rejected);
        lock (_lock)
        {
            if (accepted != _seenAccepted)
            {
                _seenAccepted = accepted;
                _refusingSince = 0;
            }

            if (rejected != _seenRejected)
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

            return _timeProvider.GetElapsedTime(_refusingSince, now);
        }
    }

    public void Dispose() => _listener.Dispose();
}
