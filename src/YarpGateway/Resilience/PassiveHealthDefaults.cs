using Yarp.ReverseProxy.Configuration;

namespace YarpGateway.Resilience;

/// <summary>
/// Passive health is on for every cluster unless it says otherwise: a cluster whose
/// <c>HealthCheck.Passive.Enabled</c> is unset gets it enabled, with the <c>OutlierEjection</c>
/// policy unless it names another. <c>Enabled: false</c> turns it off. Without this a dead
/// destination keeps its share of traffic and only the retry budget stands between it and the clients.
/// Applied by YARP each time it loads a configuration (a YARP config filter), so the snapshot we
/// validate and the one YARP runs differ only by these two defaults.
/// </summary>
internal sealed class PassiveHealthDefaults : IProxyConfigFilter
{
    public ValueTask<ClusterConfig> ConfigureClusterAsync(ClusterConfig cluster, CancellationToken cancel)
        => ValueTask.FromResult(Apply(cluster));

    public ValueTask<RouteConfig> ConfigureRouteAsync(RouteConfig route, ClusterConfig? cluster, CancellationToken cancel)
        => ValueTask.FromResult(route);

    internal static ClusterConfig Apply(ClusterConfig cluster)
    {
        var passive = cluster.HealthCheck?.Passive;
        if (passive?.Enabled is not null)
        {
            return cluster;
        }

        var enabled = (passive ?? new PassiveHealthCheckConfig()) with
        {
            Enabled = true,
            Policy = string.IsNullOrEmpty(passive?.Policy) ? OutlierEjectionPolicy.PolicyName : passive.Policy,
        };
        return cluster with { HealthCheck = (cluster.HealthCheck ?? new HealthCheckConfig()) with { Passive = enabled } };
    }
}
