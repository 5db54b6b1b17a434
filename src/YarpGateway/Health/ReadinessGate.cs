using Yarp.ReverseProxy.Configuration;
using YarpGateway.Configuration;

namespace YarpGateway.Health;

/// <summary>
/// A cluster's <c>Metadata: { "ReadinessRequiresDestination": "true" }</c>: readiness answers 503 while
/// none of its destinations is up. Off by default (see <see cref="DestinationsHealthCheck"/>); for a
/// gateway whose every route needs that one cluster, where another replica could do no better.
/// </summary>
internal sealed class ReadinessGate : IProxyConfigRule
{
    public const string MetadataKey = "ReadinessRequiresDestination";

    public IEnumerable<string> MetadataKeys => [MetadataKey];

    public static bool IsRequired(IReadOnlyDictionary<string, string>? metadata)
        => metadata is not null && metadata.TryGetValue(MetadataKey, out var value) && bool.TryParse(value, out var required) && required;

    public void ValidateRoute(RouteConfig route, string key, ICollection<ConfigError> errors)
    {
    }

    public void ValidateCluster(ClusterConfig cluster, string key, ICollection<ConfigError> errors)
    {
        if (cluster.Metadata is not null && cluster.Metadata.TryGetValue(MetadataKey, out var value) && !bool.TryParse(value, out _))
        {
            errors.Add(new ConfigError($"{key}:Metadata:{MetadataKey}", $"'{value}' is not true or false."));
        }
    }
}
