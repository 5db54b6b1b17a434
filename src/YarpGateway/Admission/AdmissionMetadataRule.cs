using Yarp.ReverseProxy.Configuration;
using YarpGateway.Configuration;

namespace YarpGateway.Admission;

/// <summary>Route and cluster <c>Metadata</c> limits must parse; checked at start-up and on reload.</summary>
internal sealed class AdmissionMetadataRule : IProxyConfigRule
{
    public IEnumerable<string> MetadataKeys =>
    [
        ConcurrencyLimitSettings.MaxConcurrencyKey, ConcurrencyLimitSettings.MaxQueueKey, ConcurrencyLimitSettings.QueueTimeoutKey,
        ConcurrencyLimitSettings.AutoMinKey, ConcurrencyLimitSettings.AutoMaxKey,
    ];

    public void ValidateRoute(RouteConfig route, string key, ICollection<ConfigError> errors)
        => ConcurrencyLimitSettings.FromMetadata(route.Metadata, key + ":Metadata", errors);

    public void ValidateCluster(ClusterConfig cluster, string key, ICollection<ConfigError> errors)
        => ConcurrencyLimitSettings.FromMetadata(cluster.Metadata, key + ":Metadata", errors);
}
