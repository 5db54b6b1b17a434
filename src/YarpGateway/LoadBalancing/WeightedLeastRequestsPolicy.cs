using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace YarpGateway.LoadBalancing;

/// <summary>
/// <c>WeightedLeastRequests</c>: the destination with the fewest in-flight requests per unit of
/// weight. Ties (always the case when the gateway is idle) are broken in smooth weighted
/// round-robin order, so a lightly loaded cluster still sees its traffic split by weight.
/// Scans all available destinations: O(n) per request, no lock, no allocation.
/// </summary>
internal sealed class WeightedLeastRequestsPolicy(WeightedScheduleCache schedules) : ILoadBalancingPolicy
{
    public const string PolicyName = "WeightedLeastRequests";

    public string Name => PolicyName;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        if (availableDestinations.Count == 0)
        {
            return null;
        }

        var schedule = schedules.Get(cluster, availableDestinations);
        var start = schedule.Next();
        if (start < 0)
        {
            return null;
        }

        var weights = schedule.Weights;
        var best = start;
        long bestLoad = availableDestinations[start].ConcurrentRequestCount;
        long bestWeight = weights[start];
        var count = availableDestinations.Count;
        for (var offset = 1; offset < count; offset++)
        {
            var i = start + offset;
            if (i >= count)
            {
                i -= count;
            }

            long weight = weights[i];
            if (weight == 0)
            {
                continue;
            }

            // load_i / weight_i < best_load / best_weight, without division.
            long load = availableDestinations[i].ConcurrentRequestCount;
            if (load * bestWeight < bestLoad * weight)
            {
                best = i;
                bestLoad = load;
                bestWeight = weight;
            }
        }

        return availableDestinations[best];
    }
}
