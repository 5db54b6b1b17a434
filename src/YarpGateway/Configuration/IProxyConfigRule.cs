using Yarp.ReverseProxy.Configuration;

namespace YarpGateway.Configuration;

/// <summary>
/// A feature's own checks on routes and clusters (usually their <c>Metadata</c>), run by
/// <see cref="GatewayConfigValidator"/> at start-up and on every reload, so that a feature's
/// settings are validated where the feature lives.
/// </summary>
internal interface IProxyConfigRule
{
    /// <summary>Adds an error for each problem in <paramref name="route"/>; <paramref name="key"/> is its configuration path.</summary>
    void ValidateRoute(RouteConfig route, string key, ICollection<ConfigError> errors);

    /// <summary>Adds an error for each problem in <paramref name="cluster"/>; <paramref name="key"/> is its configuration path.</summary>
    void ValidateCluster(ClusterConfig cluster, string key, ICollection<ConfigError> errors);

    /// <summary>The <c>Metadata</c> keys the feature reads (on routes, clusters or destinations), so that a near miss can be named (<see cref="UnknownSettings"/>).</summary>
    IEnumerable<string> MetadataKeys => [];
}
