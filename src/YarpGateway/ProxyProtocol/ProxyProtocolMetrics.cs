using System.Diagnostics;
using System.Diagnostics.Metrics;
using YarpGateway.Telemetry;

namespace YarpGateway.ProxyProtocol;

/// <summary>Connections to the Proxy endpoint closed for their PROXY protocol header, by reason (created only when the header is read).</summary>
internal sealed class ProxyProtocolMetrics
{
    private readonly Counter<long> _refused;

    public ProxyProtocolMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(GatewayMeter.Name);
        _refused = meter.CreateCounter<long>("gateway.proxy_protocol.refused", unit: "{connection}",
            description: "Connections to the proxy endpoint closed for their PROXY protocol header, by reason (missing, malformed, untrusted_peer, timeout).");
    }

    public void Refused(string reason) => _refused.Add(1, new TagList { { "reason", reason } });
}
