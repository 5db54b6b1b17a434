using System.Diagnostics;
using System.Diagnostics.Metrics;
using YarpGateway.Telemetry;

namespace YarpGateway.Security;

/// <summary>Requests the gateway refused for their credentials or their client address, by route, status (401, 403, 503) and reason.</summary>
internal sealed class SecurityMetrics
{
    private readonly Counter<long> _refused;

    public SecurityMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(GatewayMeter.Name);
        _refused = meter.CreateCounter<long>("gateway.auth.refused", unit: "{request}",
            description: "Requests refused by authentication (401), authorization (403), a route's AllowedNetworks (403) or because the token issuer's keys could not be fetched (503), by route, status and reason (missing, expired, bad_signature, wrong_issuer, wrong_audience, malformed, invalid, forbidden, network, issuer_unavailable).");
    }

    public void Refused(string route, int status, string reason)
        => _refused.Add(1, new TagList { { "route", route }, { "status", status }, { "reason", reason } });
}
