using System.Diagnostics.Metrics;
using Yarp.ReverseProxy;
using YarpGateway.Telemetry;

namespace YarpGateway.Health;

/// <summary>Destinations of each cluster that are up, observed from YARP's proxy state at each collection.</summary>
internal sealed class HealthMetrics
{
    private volatile IProxyStateLookup? _proxyState;

    public HealthMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(GatewayMeter.Name);
        meter.CreateObservableGauge("gateway.cluster.available_destinations", Observe, unit: "{destination}", description: "Destinations of each cluster that are up (not marked unhealthy by active or passive health checks).");
    }

    /// <summary>The proxy state the gauge reports; set once at start-up.</summary>
    public void Observe(IProxyStateLookup proxyState) => _proxyState = proxyState;

    private IEnumerable<Measurement<int>> Observe()
    {
        if (_proxyState is not { } state)
        {
            yield break;
        }

        foreach (var cluster in state.GetClusters())
        {
            yield return new Measurement<int>(cluster.Destinations.Values.Count(DestinationsHealthCheck.IsUp), new KeyValuePair<string, object?>("cluster", cluster.ClusterId));
        }
    }
}
