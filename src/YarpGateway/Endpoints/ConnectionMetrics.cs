using System.Diagnostics.Metrics;
using YarpGateway.Telemetry;

namespace YarpGateway.Endpoints;

/// <summary>Connection churn and what is open on the proxy endpoint, observed from <see cref="TrafficCounters"/> (nothing per request), and backend connections against their limit.</summary>
internal sealed class ConnectionMetrics
{
    public ConnectionMetrics(IMeterFactory meterFactory, TrafficCounters traffic, BackendConnectionLimit backends)
    {
        var meter = meterFactory.Create(GatewayMeter.Name);

        // rate() of the counters gives accepts/s and closes/s.
        meter.CreateObservableCounter("gateway.connections.accepted", () => traffic.AcceptedConnections, unit: "{connection}", description: "Connections accepted on the proxy endpoint.");
        meter.CreateObservableCounter("gateway.connections.closed", () => traffic.ClosedConnections, unit: "{connection}", description: "Connections on the proxy endpoint that have closed.");
        meter.CreateObservableCounter("gateway.connections.abandoned", () => traffic.AbandonedConnections, unit: "{connection}", description: "Connections let go because Kestrel did not complete them within 1 s of their transport closing (e.g. HTTP/2 stream floods).");
        meter.CreateObservableCounter("gateway.connections.reset_floods", () => traffic.ResetFloodsClosed, unit: "{connection}", description: "HTTP/2 connections closed for having more streams reset than Gateway:Http2:MaxStreamResets allows (rapid reset, MadeYouReset).");
        meter.CreateObservableGauge("gateway.connections.active", () => traffic.OpenConnections, unit: "{connection}", description: "Open connections on the proxy endpoint.");
        meter.CreateObservableGauge("gateway.connections.upgraded", () => traffic.UpgradedConnections, unit: "{connection}", description: "Upgraded (WebSocket) connections being proxied.");
        meter.CreateObservableGauge("gateway.proxy.requests.in_flight", () => traffic.InFlightRequests, unit: "{request}", description: "Proxied requests in flight.");

        // Backend sockets, against the open-file limit's share for them (BackendConnectionLimit).
        meter.CreateObservableGauge("gateway.proxy.backend_connections", () => backends.Open, unit: "{connection}", description: "Backend connections open now (every cluster, WebSockets' included).");
        meter.CreateObservableGauge("gateway.proxy.backend_connections.limit", () => backends.Limit is { } limit ? [new Measurement<int>(limit)] : Array.Empty<Measurement<int>>(), unit: "{connection}",
            description: "Backend connections allowed open at once (the open-file limit's share for them); absent when there is no limit.");
        meter.CreateObservableCounter("gateway.proxy.backend_connections.refused", () => backends.Refused, unit: "{request}", description: "Requests answered 503 because the backend connection limit was reached.");
    }
}
