using System.Diagnostics;
using System.Diagnostics.Metrics;
using YarpGateway.Telemetry;

namespace YarpGateway.Cors;

/// <summary>WebSocket handshakes refused for an origin their route's CORS policy does not allow, by route.</summary>
internal sealed class CorsMetrics
{
    private readonly Counter<long> _refused;

    public CorsMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(GatewayMeter.Name);
        _refused = meter.CreateCounter<long>("gateway.cors.websocket_refused", unit: "{request}",
            description: "WebSocket handshakes refused with 403 because their Origin is neither the gateway's own host nor allowed by their route's CORS policy, by route.");
    }

    public void Refused(string route) => _refused.Add(1, new TagList { { "route", route } });
}
