using System.Diagnostics.Metrics;
using YarpGateway.Telemetry;

namespace YarpGateway.ProxyProtocol;

/// <summary>Why a connection was closed for its PROXY protocol header.</summary>
internal enum ProxyProtocolRefusal
{
    Missing,
    Malformed,
    UntrustedPeer,
    Timeout,
}

/// <summary>
/// Connections to the Proxy endpoint closed for their PROXY protocol header, by reason (created only when the header is
/// read). Read at each collection, every reason from 0, so that the first refusal is a rise a rate or an alert sees.
/// </summary>
internal sealed class ProxyProtocolMetrics
{
    private static readonly string[] Tags = ["missing", "malformed", "untrusted_peer", "timeout"];

    private readonly long[] _refused = new long[Tags.Length];

    public ProxyProtocolMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(GatewayMeter.Name);
        meter.CreateObservableCounter("gateway.proxy_protocol.refused", Observe, unit: "{connection}",
            description: "Connections to the proxy endpoint closed for their PROXY protocol header, by reason (missing, malformed, untrusted_peer, timeout).");
    }

    public static string Tag(ProxyProtocolRefusal reason) => Tags[(int)reason];

    public void Refused(ProxyProtocolRefusal reason) => Interlocked.Increment(ref _refused[(int)reason]);

    private IEnumerable<Measurement<long>> Observe()
    {
        for (var i = 0; i < Tags.Length; i++)
        {
            yield return new Measurement<long>(Interlocked.Read(ref _refused[i]), new KeyValuePair<string, object?>("reason", Tags[i]));
        }
    }
}
