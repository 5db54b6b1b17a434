using Yarp.ReverseProxy.Configuration;
using YarpGateway.Configuration;

namespace YarpGateway.Resilience;

/// <summary>Retry, timeout and outlier-ejection metadata must parse; checked at start-up and on reload.</summary>
internal sealed class ResilienceMetadataRule : IProxyConfigRule
{
    public IEnumerable<string> MetadataKeys =>
    [
        ResilienceSettings.MaxRetriesKey, ResilienceSettings.TryTimeoutKey, ResilienceSettings.RetryStatusCodesKey,
        ResilienceSettings.RetryIdempotentKey, ResilienceSettings.ConnectTimeoutKey, ResilienceSettings.PooledConnectionLifetimeKey, ResilienceSettings.ExpectContinueAboveKey,
        .. OutlierEjectionSettings.Names.Select(name => OutlierEjectionSettings.Prefix + name),
    ];

    public void ValidateRoute(RouteConfig route, string key, ICollection<ConfigError> errors)
        => ResilienceSettings.Validate(route.Metadata, key + ":Metadata", isRoute: true, errors);

    public void ValidateCluster(ClusterConfig cluster, string key, ICollection<ConfigError> errors)
    {
        ResilienceSettings.Validate(cluster.Metadata, key + ":Metadata", isRoute: false, errors);
        OutlierEjectionSettings.Validate(cluster.Metadata, key + ":Metadata", errors);
    }
}
