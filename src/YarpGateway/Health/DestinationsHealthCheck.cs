using Microsoft.Extensions.Diagnostics.HealthChecks;
using YarpGateway.Configuration;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace YarpGateway.Health;

/// <summary>
/// Unhealthy while any cluster has no destination that is up, unless
/// <see cref="HealthOptions.RequireAvailableDestinations"/> is off. "Up" means neither active nor
/// passive health says Unhealthy (YARP's HealthyAndUnknown view). YARP's own list of available
/// destinations is not used: under its default policy, HealthyOrPanic, it returns every destination
/// when all are down, so it never empties.
/// </summary>
internal sealed class DestinationsHealthCheck(IProxyStateLookup proxyState, ReloadableOptions<HealthOptions> options) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!options.Current.RequireAvailableDestinations)
        {
            return Task.FromResult(HealthCheckResult.Healthy("not required (Gateway:Health:RequireAvailableDestinations is false)"));
        }

        List<string>? down = null;
        var clusters = 0;
        foreach (var cluster in proxyState.GetClusters())
        {
            clusters++;
            if (!cluster.Destinations.Values.Any(IsUp))
            {
                (down ??= []).Add(cluster.ClusterId);
            }
        }

        return Task.FromResult(down is null
            ? HealthCheckResult.Healthy($"all {clusters} clusters have an available destination")
            : HealthCheckResult.Unhealthy("no available destination in cluster(s): " + string.Join(", ", down.Order(StringComparer.Ordinal))));
    }

    internal static bool IsUp(DestinationState destination)
        => destination.Health.Active != DestinationHealth.Unhealthy && destination.Health.Passive != DestinationHealth.Unhealthy;
}
