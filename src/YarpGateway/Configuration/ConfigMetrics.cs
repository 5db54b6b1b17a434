using System.Diagnostics.Metrics;
using YarpGateway.Telemetry;

namespace YarpGateway.Configuration;

/// <summary>
/// Configuration reloads, by result (both exported at 0 from start, <see cref="IKnownSeries"/>), and how many errors a
/// restart would stop at.
/// </summary>
internal sealed class ConfigMetrics : IKnownSeries
{
    private static readonly KeyValuePair<string, object?> Applied = new("result", "applied");
    private static readonly KeyValuePair<string, object?> Rejected = new("result", "rejected");

    private readonly Meter _meter;
    private readonly Counter<long> _reloads;

    public ConfigMetrics(IMeterFactory meterFactory)
    {
        _meter = meterFactory.Create(GatewayMeter.Name);
        _reloads = _meter.CreateCounter<long>("gateway.config.reloads", unit: "{reload}", description: "Proxy configuration reloads, by result (applied or rejected).");
    }

    public void Reloaded(bool applied) => _reloads.Add(1, applied ? Applied : Rejected);

    /// <summary>Reads, at each collection, the errors start-up would list for the configuration files as they are now.</summary>
    public void ObserveRestartErrors(RestartCheck check)
        => _meter.CreateObservableGauge("gateway.config.restart_errors", () => check.Errors.Count, unit: "{error}",
            description: "Errors start-up would refuse in the configuration files as they are now: above 0, a new or restarted gateway would exit at once, while this one keeps its last good configuration.");

    public void Publish()
    {
        _reloads.Add(0, Applied);
        _reloads.Add(0, Rejected);
    }
}
