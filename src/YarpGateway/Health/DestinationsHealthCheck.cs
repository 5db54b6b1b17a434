using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy;

namespace YarpGateway.Health;

/// <summary>
/// Unhealthy while any cluster has no available destination (YARP's view: health checks and
/// passive ejection), unless <see cref="HealthOptions.RequireAvailableDestinations"/> is off.
/// </summary>
internal sealed class DestinationsHealthCheck(IProxyStateLookup proxyState, IOptionsMonitor<HealthOptions> options) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!options.CurrentValue.RequireAvailableDestinations)
        {
            return Task.FromResult(HealthCheckResult.Healthy("not required (Gateway:Health:RequireAvailableDestinations is false)"));
        }

        List<string>? empty = null;
        var clusters = 0;
        foreach (var cluster in proxyState.GetClusters())
        {
            clusters++;
            if (cluster.DestinationsState.AvailableDestinations.Count == 0)
            {
                (empty ??= []).Add(cluster.ClusterId);
            }
        }

        return Task.FromResult(empty is null
            ? HealthCheckResult.Healthy($"all {clusters} clusters have an available destination")
            : HealthCheckResult.Unhealthy("no available destination in cluster(s): " + string.Join(", ", empty.Order(StringComparer.Ordinal))));
    }
}
