using System.Diagnostics;
using System.Diagnostics.Metrics;
using Yarp.ReverseProxy;
using YarpGateway.Telemetry;

namespace YarpGateway.LoadBalancing;

/// <summary>Requests in flight to each destination, observed from YARP's proxy state at each collection (nothing per request).</summary>
internal sealed class DestinationMetrics
{
    private volatile IProxyStateLookup? _proxyState;

    public DestinationMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(GatewayMeter.Name);
        meter.CreateObservableGauge("gateway.proxy.destination.in_flight", Observe, unit: "{request}", description: "Requests in flight to each destination.");
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
            foreach (var destination in cluster.Destinations.Values)
            {
                yield return new Measurement<int>(destination.ConcurrentRequestCount, new TagList { { "cluster", cluster.ClusterId }, { "destination", destination.DestinationId } });
            }
        }
    }
}
