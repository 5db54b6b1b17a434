using System.Runtime.CompilerServices;
using Yarp.ReverseProxy.Model;

namespace YarpGateway.LoadBalancing;

/// <summary>
/// Holds the current <see cref="WeightedSchedule"/> of each cluster. YARP replaces a cluster's
/// model on any config change and its available-destinations list on any health change, so a
/// schedule is current while both references match; otherwise it is rebuilt (rare, and racing
/// rebuilders produce equal schedules, so the last write simply wins).
/// </summary>
internal sealed class WeightedScheduleCache
{
    private readonly ConditionalWeakTable<ClusterState, Holder> _byCluster = new();

    public WeightedSchedule Get(ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        var holder = _byCluster.GetValue(cluster, static _ => new Holder());
        var schedule = holder.Schedule;
        if (schedule is null || !schedule.IsFor(cluster, availableDestinations))
        {
            schedule = WeightedSchedule.Create(cluster.Model, availableDestinations);
            holder.Schedule = schedule;
        }

        return schedule;
    }

    private sealed class Holder
    {
        public volatile WeightedSchedule? Schedule;
    }
}
