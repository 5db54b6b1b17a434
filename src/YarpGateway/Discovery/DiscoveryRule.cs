using Yarp.ReverseProxy.Configuration;
using YarpGateway.Configuration;

namespace YarpGateway.Discovery;

/// <summary>
/// Which destinations DNS discovery resolves: those with a host name (not an IP address) in clusters
/// where discovery is on (<c>Metadata: { "Discovery": "Dns" }</c>, or <see cref="DiscoveryOptions.Dns"/>
/// unless the cluster says <c>"None"</c>). Also the rule that checks <c>Metadata.Discovery</c>.
/// </summary>
internal sealed class DiscoveryRule : IProxyConfigRule
{
    public const string MetadataKey = "Discovery";

    public IEnumerable<string> MetadataKeys => [MetadataKey];

    public static bool IsOn(ClusterConfig cluster, bool dnsByDefault)
        => cluster.Metadata is not null && cluster.Metadata.TryGetValue(MetadataKey, out var value)
            ? string.Equals(value, "Dns", StringComparison.OrdinalIgnoreCase)
            : dnsByDefault;

    public static bool HasHostName(DestinationConfig destination)
        => Uri.TryCreate(destination.Address, UriKind.Absolute, out var uri) && uri.HostNameType == UriHostNameType.Dns;

    public void ValidateRoute(RouteConfig route, string key, ICollection<ConfigError> errors)
    {
    }

    public void ValidateCluster(ClusterConfig cluster, string key, ICollection<ConfigError> errors)
    {
        if (cluster.Metadata is not null && cluster.Metadata.TryGetValue(MetadataKey, out var value)
            && !string.Equals(value, "Dns", StringComparison.OrdinalIgnoreCase) && !string.Equals(value, "None", StringComparison.OrdinalIgnoreCase))
        {
            errors.Add(new ConfigError($"{key}:Metadata:{MetadataKey}", $"'{value}' is not Dns or None."));
        }
    }
}
