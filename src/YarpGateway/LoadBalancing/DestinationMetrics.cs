using System.Diagnostics;
using System.Diagnostics.Metrics;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;
using YarpGateway.Status;
using YarpGateway.Telemetry;

namespace YarpGateway.LoadBalancing;

/// <summary>
/// Per-destination instruments, observed at each collection for the destinations that exist now (nothing per
/// request): requests in flight from YARP's proxy state; requests, 5xx answers and the last minute's p99 from
/// <see cref="DestinationStats"/>. A destination that is gone (a pod replaced in a rolling update) is no longer
/// reported, so its series end with it; a counter or histogram labelled by destination would keep them for the
/// process's life (see <c>MetricsExport.GatewayExcludedTags</c>).
/// <para>
/// Its series stop being exported, but OpenTelemetry keeps each label set's place in a cumulative stream until the
/// instrument ends: tried with 60 destinations replaced by 60 new ones on every reload, at 100 series per metric the
/// second set's series already went to <c>otel_metric_overflow</c> and the third set had none of its own. At the default
/// 2,000, pods replaced by rolling updates would fill it within weeks. So the instruments live on a meter of their own,
/// and when a quarter of <see cref="TelemetryOptions.MaxSeriesPerMetric"/> of the label sets they reported since it was
/// made belong to destinations that are gone, the meter is replaced (checked every <see cref="RotationCheckInterval"/>):
/// the new instruments start with the destinations that exist. Tried while scraping every 50 ms: every scrape had each
/// metric once, never twice or not at all. A meter from <see cref="IMeterFactory"/> lives as long as its factory (its
/// <c>Dispose</c> does nothing), so this one is made directly.
/// </para>
/// </summary>
internal sealed class DestinationMetrics : IDisposable
{
    /// <summary>How often the share of gone destinations is checked.</summary>
    internal static readonly TimeSpan RotationCheckInterval = TimeSpan.FromSeconds(5);

    private readonly DestinationStats _stats;
    private readonly int _maxGone;
    private readonly Lock _lock = new();
    private readonly HashSet<(string Cluster, string Destination)> _reported = [];
    private readonly ITimer _check;
    private volatile IProxyStateLookup? _proxyState;
    private Meter _meter;
    private int _existing;

    public DestinationMetrics(MetricSeriesLimit limit, DestinationStats stats, TimeProvider timeProvider)
    {
        _stats = stats;
        _maxGone = Math.Max(1, limit.MaxSeries / 4);
        _meter = CreateInstruments();
        _check = timeProvider.CreateTimer(static state => ((DestinationMetrics)state!).ReplaceIfMostlyGone(), this, RotationCheckInterval, RotationCheckInterval);
    }

    public void Dispose()
    {
        _check.Dispose();
        Meter meter;
        lock (_lock)
        {
            meter = _meter;
        }

        meter.Dispose();
    }

    /// <summary>Replaces the meter when enough of the label sets its instruments hold are of destinations that are gone.</summary>
    internal void ReplaceIfMostlyGone()
    {
        Meter old;
        lock (_lock)
        {
            if (_reported.Count - Volatile.Read(ref _existing) < _maxGone)
            {
                return;
            }

            _reported.Clear();
            old = _meter;
        }

        // The old instruments end first: new ones made while they still exist would be given their streams again.
        // Outside the lock, which a collection in progress may be waiting for.
        old.Dispose();
        var created = CreateInstruments();
        lock (_lock)
        {
            _meter = created;
        }
    }

    private Meter CreateInstruments()
    {
        var meter = new Meter(GatewayMeter.Name);
        meter.CreateObservableGauge("gateway.proxy.destination.in_flight", ObserveInFlight, unit: "{request}", description: "Requests in flight to each destination.");
        meter.CreateObservableCounter("gateway.proxy.destination.requests", () => Each((c, d) => _stats.For(c, d.DestinationId)?.Requests), unit: "{request}", description: "Requests each destination answered last (after retries), since the gateway first sent it one; only destinations that exist now.");
        meter.CreateObservableCounter("gateway.proxy.destination.errors", () => Each((c, d) => _stats.For(c, d.DestinationId)?.Errors), unit: "{request}", description: "Requests each destination answered last with a 5xx (the gateway's own 502 and 504 for it included), since the gateway first sent it one; only destinations that exist now.");
        meter.CreateObservableGauge("gateway.proxy.destination.duration.p99", ObserveP99, unit: "s", description: "The 99th percentile of the last minute's request durations for each destination (the upper bound of its bucket: 0.5 ms to 30 s); only destinations with requests in that minute.");
        return meter;
    }

    /// <summary>Every destination that exists, counting them.</summary>
    private IEnumerable<Measurement<long>> ObserveInFlight()
    {
        var existing = 0;
        foreach (var (cluster, destination) in Destinations())
        {
            existing++;
            yield return new Measurement<long>(destination.ConcurrentRequestCount, Tags(cluster, destination));
        }

        Volatile.Write(ref _existing, existing);
    }

    /// <summary>The proxy state the instruments report; set once at start-up.</summary>
    public void Observe(IProxyStateLookup proxyState) => _proxyState = proxyState;

    private IEnumerable<Measurement<long>> Each(Func<string, DestinationState, long?> value)
    {
        foreach (var (cluster, destination) in Destinations())
        {
            if (value(cluster, destination) is { } measured)
            {
                yield return new Measurement<long>(measured, Tags(cluster, destination));
            }
        }
    }

    private IEnumerable<Measurement<double>> ObserveP99()
    {
        var now = _stats.Now;
        foreach (var (cluster, destination) in Destinations())
        {
            if (_stats.For(cluster, destination.DestinationId)?.LastMinuteP99(now) is { } p99)
            {
                yield return new Measurement<double>(p99 / 1000, Tags(cluster, destination));
            }
        }
    }

    private IEnumerable<(string Cluster, DestinationState Destination)> Destinations()
    {
        if (_proxyState is not { } state)
        {
            yield break;
        }

        foreach (var cluster in state.GetClusters())
        {
            foreach (var destination in cluster.Destinations.Values)
            {
                yield return (cluster.ClusterId, destination);
            }
        }
    }

    private TagList Tags(string cluster, DestinationState destination)
    {
        lock (_lock)
        {
            _reported.Add((cluster, destination.DestinationId));
        }

        return new() { { "cluster", cluster }, { "destination", destination.DestinationId } };
    }
}
