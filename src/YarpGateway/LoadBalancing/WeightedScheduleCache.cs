using System.Runtime.CompilerServices;
using Yarp.ReverseProxy.Model;

namespace YarpGateway.LoadBalancing;

/// <summary>
/// Holds the current <see cref="WeightedSchedule"/> of each cluster. YARP replaces a cluster's
/// model on any config change and its available-destinations list on any health change, so a
/// schedule is current while both references match; otherwise it is rebuilt (rare, and racing
/// rebuilders produce equal schedules, so the last write simply wins).
/// A retry hands load balancing a narrower list (the cluster's minus the destinations that failed
/// this request). That list is not a change of the cluster: it is served from the cluster's own
/// schedule, skipping what it leaves out, and neither replaces that schedule nor moves its cursor
/// (rebuilding for it reset the order and sent every retry, and the requests after it, to the
/// first destination of the smooth order).
/// </summary>
internal sealed class WeightedScheduleCache(DrainedDestinationFilter drained)
{
    private readonly ConditionalWeakTable<ClusterState, Holder> _byCluster = new();

    /// <summary>The schedule for <paramref name="availableDestinations"/>; <paramref name="narrowed"/> says it was made for a wider list (pick with <see cref="WeightedSchedule.NextWithin"/>).</summary>
    public WeightedSchedule Get(ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations, out bool narrowed)
    {
        narrowed = false;
        var holder = _byCluster.GetValue(cluster, static _ => new Holder());
        var schedule = holder.Schedule;
        if (schedule is not null && schedule.IsFor(cluster, availableDestinations))
        {
            return schedule;
        }

        // The cluster's own list, as every first attempt sees it: a real change, so rebuild.
        var own = drained.Filter(cluster, cluster.DestinationsState.AvailableDestinations);
        if (schedule is null || ReferenceEquals(availableDestinations, own) || !ReferenceEquals(schedule.Model, cluster.Model))
        {
            schedule = WeightedSchedule.Create(cluster.Model, availableDestinations);
            holder.Schedule = schedule;
            return schedule;
        }

        if (schedule.ContainsAll(availableDestinations))
        {
            narrowed = true;
            return schedule;
        }

        // A list from before a health change: served on its own, without replacing the cluster's schedule.
        return WeightedSchedule.Create(cluster.Model, availableDestinations);
    }

    private sealed class Holder
    {
        public volatile WeightedSchedule? Schedule;
    }
}
