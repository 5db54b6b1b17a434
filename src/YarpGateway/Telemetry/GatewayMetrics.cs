using System.Diagnostics.Metrics;

namespace YarpGateway.Telemetry;

/// <summary>
/// Every instrument the gateway publishes, created once from <see cref="IMeterFactory"/>.
/// Features report through methods here so that names, units and tags live in one place.
/// </summary>
internal sealed class GatewayMetrics
{
    public const string MeterName = "YarpGateway";

    private readonly Counter<long> _configReloads;

    public GatewayMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        _configReloads = meter.CreateCounter<long>(
            "gateway.config.reloads",
            unit: "{reload}",
            description: "Proxy configuration reloads, by result (applied or rejected).");
    }

    public void ConfigReloaded(bool applied)
    {
        if (_configReloads.Enabled)
        {
            _configReloads.Add(1, new KeyValuePair<string, object?>("result", applied ? "applied" : "rejected"));
        }
    }
}
