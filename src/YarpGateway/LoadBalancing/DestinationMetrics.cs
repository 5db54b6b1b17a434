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
/// </summary>
internal sealed class DestinationMetrics
{
    private readonly DestinationStats _stats;
    private volatile IProxyStateLookup? _proxyState;

    public DestinationMetrics(IMeterFactory meterFactory, DestinationStats stats)
    {
        _stats = stats;
        var meter = meterFactory.Create(GatewayMeter.Name);
        meter.CreateObservableGauge("gateway.proxy.destination.in_flight", () => Each(static (_, d) => d.ConcurrentRequestCount), unit: "{request}", description: "Requests in flight to each destination.");
        meter.CreateObservableCounter("gateway.proxy.destination.requests", () => Each((c, d) => _stats.For(c, d.DestinationId)?.Requests), unit: "{request}", description: "Requests each destination answered last (after retries), since the gateway first sent it one; only destinations that exist now.");
        meter.CreateObservableCounter("gateway.proxy.destination.errors", () => Each((c, d) => _stats.For(c, d.DestinationId)?.Errors), unit: "{request}", description: "Requests each destination answered last with a 5xx (the gateway's own 502 and 504 for it included), since the gateway first sent it one; only destinations that exist now.");
        meter.CreateObservableGauge("gateway.proxy.destination.duration.p99", ObserveP99, unit: "s", description: "The 99th percentile of the last minute's request durations for each destination (the upper bound of its bucket: 0.5 ms to 30 s); only destinations with requests in that minute.");
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

    private static TagList Tags(string cluster, DestinationState destination) => new() { { "cluster", cluster }, { "destination", destination.DestinationId } };
}
