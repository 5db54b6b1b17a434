using Microsoft.Extensions.Diagnostics.HealthChecks;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace YarpGateway.Health;

/// <summary>
/// Names the clusters that have no destination up. Readiness does not depend on them: a dependency
/// outage must never take every gateway replica out of the Service (then every route is down,
/// the healthy ones too), so such clusters make the check <c>Degraded</c>, which still answers 200.
/// A cluster opts in to gate readiness with <c>Metadata: { "ReadinessRequiresDestination": "true" }</c>;
/// then it makes the check <c>Unhealthy</c> (503) while none of its destinations is up.
/// "Up" means neither active nor passive health says Unhealthy (YARP's HealthyAndUnknown view).
/// YARP's own list of available destinations is not used: under its default policy, HealthyOrPanic,
/// it returns every destination when all are down, so it never empties.
/// </summary>
internal sealed class DestinationsHealthCheck(IProxyStateLookup proxyState) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        List<string>? gating = null;
        List<string>? down = null;
        var clusters = 0;
        foreach (var cluster in proxyState.GetClusters())
        {
            clusters++;
            if (cluster.Destinations.Values.Any(IsUp))
            {
                continue;
            }

            if (ReadinessGate.IsRequired(cluster.Model?.Config.Metadata))
            {
                (gating ??= []).Add(cluster.ClusterId);
            }
            else
            {
                (down ??= []).Add(cluster.ClusterId);
            }
        }

        if (gating is not null)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy(
                $"no available destination in cluster(s) that gate readiness ({ReadinessGate.MetadataKey}): {Join(gating)}"
                + (down is null ? string.Empty : $"; also without one: {Join(down)}")));
        }

        return Task.FromResult(down is null
            ? HealthCheckResult.Healthy($"all {clusters} clusters have an available destination")
            : HealthCheckResult.Degraded($"no available destination in cluster(s): {Join(down)}; readiness does not depend on them"));
    }

    internal static bool IsUp(DestinationState destination)
        => destination.Health.Active != DestinationHealth.Unhealthy && destination.Health.Passive != DestinationHealth.Unhealthy;

    private static string Join(List<string> clusters) => string.Join(", ", clusters.Order(StringComparer.Ordinal));
}
