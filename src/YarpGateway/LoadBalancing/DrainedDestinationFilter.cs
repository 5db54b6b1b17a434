using System.Runtime.CompilerServices;
using Yarp.ReverseProxy.Model;

namespace YarpGateway.LoadBalancing;

/// <summary>
/// Removes drained destinations (weight 0) from a request's available destinations, before session
/// affinity and load balancing, so that draining works with every load-balancing policy: YARP does
/// not even ask the policy when a single destination is available. In-flight requests finish.
/// The filtered list is computed once per (cluster config, available list) and shared; while
/// nothing is drained the original list is used as is. No allocation per request.
/// </summary>
internal sealed class DrainedDestinationFilter
{
    private readonly ConditionalWeakTable<ClusterState, Entry> _byCluster = new();

    public IReadOnlyList<DestinationState> Filter(ClusterState cluster, IReadOnlyList<DestinationState> available)
    {
        var holder = _byCluster.GetValue(cluster, static _ => new Entry());
        var cached = holder.Current;
        if (cached is not null && ReferenceEquals(cached.Source, available) && ReferenceEquals(cached.Model, cluster.Model))
        {
            return cached.Filtered;
        }

        var drained = 0;
        foreach (var destination in available)
        {
            if (DestinationWeight.Of(destination) == 0)
            {
                drained++;
            }
        }

        IReadOnlyList<DestinationState> filtered = drained == 0
            ? available
            : available.Where(d => DestinationWeight.Of(d) != 0).ToArray();
        holder.Current = new FilteredList(cluster.Model, available, filtered);
        return filtered;
    }

    private sealed record FilteredList(ClusterModel? Model, IReadOnlyList<DestinationState> Source, IReadOnlyList<DestinationState> Filtered);

    private sealed class Entry
    {
        public volatile FilteredList? Current;
    }
}
