using Yarp.ReverseProxy.Configuration;
using YarpGateway.Configuration;

namespace YarpGateway.LoadBalancing;

/// <summary>Every destination's <c>Metadata.Weight</c> must parse (see <see cref="DestinationWeight"/>).</summary>
internal sealed class DestinationWeightRule : IProxyConfigRule
{
    public IEnumerable<string> MetadataKeys => [DestinationWeight.MetadataKey];

    public void ValidateRoute(RouteConfig route, string key, ICollection<ConfigError> errors)
    {
    }

    public void ValidateCluster(ClusterConfig cluster, string key, ICollection<ConfigError> errors)
    {
        if (cluster.Destinations is null)
        {
            return;
        }

        foreach (var (destinationId, destination) in cluster.Destinations)
        {
            if (destination.Metadata is not null
                && destination.Metadata.TryGetValue(DestinationWeight.MetadataKey, out var text)
                && !DestinationWeight.TryParse(text, out _, out var error))
            {
                errors.Add(new ConfigError($"{key}:Destinations:{destinationId}:Metadata:{DestinationWeight.MetadataKey}", error!));
            }
        }
    }
}
