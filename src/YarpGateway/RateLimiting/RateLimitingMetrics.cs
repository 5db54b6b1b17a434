using System.Diagnostics.Metrics;
using YarpGateway.Telemetry;

namespace YarpGateway.RateLimiting;

/// <summary>Partitions alive per policy, read at collection (bounded by the policy's MaxPartitions).</summary>
internal sealed class RateLimitingMetrics
{
    public RateLimitingMetrics(IMeterFactory meterFactory, RateLimitPolicies policies)
    {
        var meter = meterFactory.Create(GatewayMeter.Name);
        meter.CreateObservableGauge("gateway.rate_limiting.partitions", () => Observe(policies), unit: "{partition}",
            description: "Rate-limit partitions alive, by policy; at most the policy's MaxPartitions (and one overflow partition).");
    }

    private static IEnumerable<Measurement<int>> Observe(RateLimitPolicies policies)
        => policies.All.Values.Select(policy => new Measurement<int>(policy.Partitions, new KeyValuePair<string, object?>("policy", policy.Name)));
}
