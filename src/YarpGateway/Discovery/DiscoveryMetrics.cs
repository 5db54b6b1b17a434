using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using YarpGateway.Telemetry;

namespace YarpGateway.Discovery;

/// <summary>DNS discovery's instruments: destinations resolved per cluster, failed look-ups, the time of the last refresh.</summary>
internal sealed class DiscoveryMetrics
{
    private readonly ConcurrentDictionary<string, (int Destinations, double RefreshedAt)> _clusters = new(StringComparer.OrdinalIgnoreCase);
    private readonly Counter<long> _failures;

    public DiscoveryMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(GatewayMeter.Name);
        _failures = meter.CreateCounter<long>("gateway.discovery.failures", unit: "{lookup}", description: "DNS look-ups of a destination that failed or found no address, by cluster (the last known addresses stay).");
        meter.CreateObservableGauge("gateway.discovery.destinations", () => Observe(c => c.Destinations), unit: "{destination}", description: "Destinations of each discovered cluster after the last DNS refresh.");
        meter.CreateObservableGauge("gateway.discovery.last_refresh", () => Observe(c => c.RefreshedAt), unit: "s", description: "When each discovered cluster was last refreshed from DNS (Unix time).");
    }

    public void Failed(string cluster) => _failures.Add(1, new KeyValuePair<string, object?>("cluster", cluster));

    public void Resolved(string cluster, int destinations, DateTimeOffset at)
        => _clusters[cluster] = (destinations, at.ToUnixTimeMilliseconds() / 1000.0);

    private IEnumerable<Measurement<double>> Observe(Func<(int Destinations, double RefreshedAt), double> value)
        => _clusters.Select(c => new Measurement<double>(value(c.Value), new KeyValuePair<string, object?>("cluster", c.Key)));
}
