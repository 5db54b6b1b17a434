using System.Diagnostics.Metrics;
using YarpGateway.Telemetry;

namespace YarpGateway.Configuration;

/// <summary>Configuration reloads, by result; both results exported at 0 from start (<see cref="IKnownSeries"/>).</summary>
internal sealed class ConfigMetrics : IKnownSeries
{
    private static readonly KeyValuePair<string, object?> Applied = new("result", "applied");
    private static readonly KeyValuePair<string, object?> Rejected = new("result", "rejected");

    private readonly Counter<long> _reloads;

    public ConfigMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(GatewayMeter.Name);
        _reloads = meter.CreateCounter<long>("gateway.config.reloads", unit: "{reload}", description: "Proxy configuration reloads, by result (applied or rejected).");
    }

    public void Reloaded(bool applied) => _reloads.Add(1, applied ? Applied : Rejected);

    public void Publish()
    {
        _reloads.Add(0, Applied);
        _reloads.Add(0, Rejected);
    }
}
