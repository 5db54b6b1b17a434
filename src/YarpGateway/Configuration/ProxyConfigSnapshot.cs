using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Configuration;

namespace YarpGateway.Configuration;

/// <summary>One validated proxy configuration, handed to YARP; signalled when a newer one replaces it.</summary>
internal sealed class ProxyConfigSnapshot : IProxyConfig, IDisposable
{
    private readonly CancellationTokenSource _changed = new();

    public ProxyConfigSnapshot(IReadOnlyList<RouteConfig> routes, IReadOnlyList<ClusterConfig> clusters, long revision)
    {
        Routes = routes;
        Clusters = clusters;
        Revision = revision;
        ChangeToken = new CancellationChangeToken(_changed.Token);
    }

    public long Revision { get; }

    public string RevisionId => Revision.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public IReadOnlyList<RouteConfig> Routes { get; }

    public IReadOnlyList<ClusterConfig> Clusters { get; }

    public IChangeToken ChangeToken { get; }

    /// <summary>True when the routes and clusters equal another read (YARP's records compare by value).</summary>
    public bool HasSameContent(ProxyConfigReadResult read)
        => Routes.SequenceEqual(read.Routes) && Clusters.SequenceEqual(read.Clusters);

    /// <summary>Tells YARP to read the provider again.</summary>
    public void SignalChanged() => _changed.Cancel();

    // Snapshots are not disposed when replaced: YARP may still hold their change token.
    public void Dispose() => _changed.Dispose();
}
