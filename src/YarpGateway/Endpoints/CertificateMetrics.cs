using System.Diagnostics.Metrics;
using YarpGateway.Telemetry;

namespace YarpGateway.Endpoints;

/// <summary>When each HTTPS endpoint's certificate expires, as served now (after any reload), for an alert well before it does.</summary>
internal sealed class CertificateMetrics
{
    public CertificateMetrics(IMeterFactory meterFactory, CertificateReloader certificates)
    {
        var meter = meterFactory.Create(GatewayMeter.Name);
        meter.CreateObservableGauge(
            "gateway.tls.certificate.expiry",
            () => certificates.Current().Select(c => new Measurement<double>(
                new DateTimeOffset(c.Certificate.NotAfter.ToUniversalTime()).ToUnixTimeSeconds(),
                new KeyValuePair<string, object?>("endpoint", c.Endpoint))),
            unit: "s",
            description: "When the certificate an HTTPS endpoint serves expires, in seconds since the Unix epoch (after any reload of renewed files).");
    }
}
