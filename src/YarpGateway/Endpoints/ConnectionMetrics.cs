using System.Diagnostics.Metrics;
using YarpGateway.Telemetry;

namespace YarpGateway.Endpoints;

/// <summary>Connection churn and what is open on the proxy endpoint, observed from <see cref="TrafficCounters"/> (nothing per request).</summary>
internal sealed class ConnectionMetrics
{
    public ConnectionMetrics(IMeterFactory meterFactory, TrafficCounters traffic)
    {
        var meter = meterFactory.Create(GatewayMeter.Name);

        // rate() of the counters gives accepts/s and closes/s.
        meter.CreateObservableCounter("gateway.connections.accepted", () => traffic.AcceptedConnections, unit: "{connection}", description: "Connections accepted on the proxy endpoint.");
        meter.CreateObservableCounter("gateway.connections.closed", () => traffic.ClosedConnections, unit: "{connection}", description: "Connections on the proxy endpoint that have closed.");
        meter.CreateObservableCounter("gateway.connections.abandoned", () => traffic.AbandonedConnections, unit: "{connection}", description: "Connections let go because Kestrel did not complete them within 1 s of their transport closing (e.g. HTTP/2 stream floods).");
        meter.CreateObservableCounter("gateway.connections.reset_floods", () => traffic.ResetFloodsClosed, unit: "{connection}", description: "HTTP/2 connections closed for resetting more streams than Gateway:Http2:MaxStreamResets allows (rapid reset).");
        meter.CreateObservableGauge("gateway.connections.active", () => traffic.OpenConnections, unit: "{connection}", description: "Open connections on the proxy endpoint.");
        meter.CreateObservableGauge("gateway.connections.upgraded", () => traffic.UpgradedConnections, unit: "{connection}", description: "Upgraded (WebSocket) connections being proxied.");
        meter.CreateObservableGauge("gateway.proxy.requests.in_flight", () => traffic.InFlightRequests, unit: "{request}", description: "Proxied requests in flight.");
    }
}
