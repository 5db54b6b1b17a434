using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.LoadBalancing;

namespace YarpGateway.Configuration;

/// <summary>
/// Validates a proxy configuration completely before it is applied: what the reader could not read,
/// cluster references and session affinity, every feature's <see cref="IProxyConfigRule"/>, and
/// YARP's own validator. Returns every error, never just the first.
/// </summary>
internal sealed class GatewayConfigValidator(IConfigValidator yarpValidator, IEnumerable<ILoadBalancingPolicy> loadBalancingPolicies, IEnumerable<IProxyConfigRule> rules)
{
    private readonly IProxyConfigRule[] _rules = rules.ToArray();
    private readonly string _policyNames = string.Join(", ", loadBalancingPolicies.Select(p => p.Name).Order(StringComparer.Ordinal));

    private const string RoutesKey = ProxyConfigReader.SectionName + ":Routes:";
    private const string ClustersKey = ProxyConfigReader.SectionName + ":Clusters:";

    public async ValueTask<IReadOnlyList<ConfigError>> ValidateAsync(ProxyConfigReadResult config, CancellationToken cancellationToken)
    {
        var errors = new List<ConfigError>(config.Errors);
        var clusterIds = new HashSet<string>(config.Clusters.Select(c => c.ClusterId), StringComparer.OrdinalIgnoreCase);

        foreach (var route in config.Routes)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var key = RoutesKey + route.RouteId;
            if (!string.IsNullOrEmpty(route.ClusterId) && !clusterIds.Contains(route.ClusterId))
            {
                var known = clusterIds.Count == 0 ? "none are defined" : "defined clusters: " + string.Join(", ", clusterIds.Order(StringComparer.Ordinal));
                errors.Add(new ConfigError(key + ":ClusterId", $"route '{route.RouteId}' refers to cluster '{route.ClusterId}', which is not defined ({known})."));
            }

            foreach (var rule in _rules)
            {
                rule.ValidateRoute(route, key, errors);
            }

            foreach (var exception in await yarpValidator.ValidateRouteAsync(route))
            {
                errors.Add(new ConfigError(key, exception.Message));
            }
        }

        foreach (var cluster in config.Clusters)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var key = ClustersKey + cluster.ClusterId;
            ValidateSessionAffinity(cluster, key, errors);
            foreach (var rule in _rules)
            {
                rule.ValidateCluster(cluster, key, errors);
            }

            foreach (var exception in await yarpValidator.ValidateClusterAsync(cluster))
            {
                var message = exception.Message.Contains(nameof(ILoadBalancingPolicy), StringComparison.Ordinal)
                    ? $"{exception.Message} Available policies: {_policyNames}."
                    : exception.Message;
                errors.Add(new ConfigError(key, message));
            }
        }

        return errors;
    }

    private static void ValidateSessionAffinity(ClusterConfig cluster, string key, List<ConfigError> errors)
    {
        var affinity = cluster.SessionAffinity;
        if (affinity is null)
        {
            return;
        }

        // HashCookie needs System.IO.Hashing, which this build does not ship (see YarpGateway.csproj).
        // YARP also picks HashCookie when affinity is enabled without a policy.
        if (string.Equals(affinity.Policy, "HashCookie", StringComparison.OrdinalIgnoreCase))
        {
            errors.Add(new ConfigError(key + ":SessionAffinity:Policy",
                $"cluster '{cluster.ClusterId}' uses session affinity policy 'HashCookie', which this gateway does not support; use \"Policy\": \"Cookie\" (or \"ArrCookie\", \"CustomHeader\")."));
        }
        else if (affinity.Enabled == true && string.IsNullOrEmpty(affinity.Policy))
        {
            errors.Add(new ConfigError(key + ":SessionAffinity:Policy",
                $"cluster '{cluster.ClusterId}' enables session affinity without a policy, and YARP's default policy 'HashCookie' is not supported by this gateway; set \"Policy\": \"Cookie\"."));
        }
    }
}
