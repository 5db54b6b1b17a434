using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace YarpGateway.LoadBalancing;

/// <summary>
/// <c>WeightedRoundRobin</c>: smooth weighted round robin over the available destinations.
/// Weight 0 destinations get no new requests. A retry picks from the cluster's own order, skipping
/// the destinations that already failed it (<see cref="WeightedScheduleCache"/>).
/// </summary>
internal sealed class WeightedRoundRobinPolicy(WeightedScheduleCache schedules) : ILoadBalancingPolicy
{
    public const string PolicyName = "WeightedRoundRobin";

    public string Name => PolicyName;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        if (availableDestinations.Count == 0)
        {
            return null;
        }

        var schedule = schedules.Get(cluster, availableDestinations, out var narrowed);
        if (narrowed)
        {
            return schedule.NextWithin(availableDestinations);
        }

        var index = schedule.Next();
        return index < 0 ? null : availableDestinations[index];
    }
}
