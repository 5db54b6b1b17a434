using System.Collections.Frozen;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace YarpGateway.Resilience;

/// <summary>
/// Reports a proxied request's outcome to its cluster's passive health policy (outlier ejection by
/// default), as YARP's passive health middleware did at the end of its pipeline. The retry middleware
/// reports each attempt; the WebSocket relay reports a connection whose copy failed after its handshake.
/// </summary>
internal sealed class PassiveHealthReporter(IEnumerable<IPassiveHealthCheckPolicy> policies)
{
    // By name, as YARP's passive health middleware finds them (names are unique, compared without case).
    private readonly FrozenDictionary<string, IPassiveHealthCheckPolicy> _policies = policies.ToFrozenDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Reports the request's (or its attempt's) outcome; <paramref name="tryTimedOut"/>: the attempt's try timeout fired. A
    /// WebSocket's copy is reported with none: its response had started, which disarms the try timeout.
    /// </summary>
    public void Report(HttpContext context, IReverseProxyFeature proxy, bool tryTimedOut = false)
    {
        var passive = proxy.Cluster?.Config.HealthCheck?.Passive;
        if (passive is not { Enabled: true } || proxy.ProxiedDestination is not { } destination || proxy.Route.Cluster is not { } cluster)
        {
            return;
        }

        // YARP's config validation refuses a policy name it does not know; the default is YARP's, as its middleware's is.
        var name = string.IsNullOrEmpty(passive.Policy) ? HealthCheckConstants.PassivePolicy.TransportFailureRate : passive.Policy;
        var policy = _policies[name];
        if (policy is OutlierEjectionPolicy outliers)
        {
            outliers.AttemptEnded(context, cluster, destination, tryTimedOut);
        }
        else
        {
            policy.RequestProxied(context, cluster, destination);
        }
    }
}
