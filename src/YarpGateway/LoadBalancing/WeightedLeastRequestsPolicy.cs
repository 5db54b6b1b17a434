using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace YarpGateway.LoadBalancing;

/// <summary>
/// <c>WeightedLeastRequests</c>: in-flight requests per unit of weight decide, with the smooth
/// weighted order as the tie-breaker. The request goes to the destination next in the smooth order
/// unless that one is overloaded: when another destination, even after taking this request, would
/// still carry at least one in-flight request per weight unit less, the least loaded (per weight)
/// gets it. With equally fast backends the split therefore matches the weights at any concurrency
/// (plain "lowest in-flight/weight" does not: with 8 requests in flight over weights 5/3/1 it
/// splits 50/37/13); a slow or stuck destination piles up in-flight requests and sheds traffic.
/// O(n) per request over the available destinations; no lock, no allocation. A retry follows the
/// cluster's own order, skipping the destinations that already failed it (<see cref="WeightedScheduleCache"/>).
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

        var schedule = schedules.Get(cluster, availableDestinations, out var narrowed);
        int scheduled;
        if (narrowed)
        {
            // A retry: the cluster's order without the destinations that failed; weights read per
            // destination (a retry is rare enough not to need them cached).
            scheduled = schedule.NextWithin(availableDestinations) is { } next ? WeightedSchedule.IndexOf(availableDestinations, next) : -1;
        }
        else
        {
            scheduled = schedule.Next();
        }

        if (scheduled < 0)
        {
            return null;
        }

        var weights = narrowed ? null : schedule.Weights;

        // The least loaded per weight once it takes this request: argmin (load_i + 1) / weight_i.
        var best = -1;
        long bestLoad = 0, bestWeight = 1;
        for (var i = 0; i < availableDestinations.Count; i++)
        {
            long weight = weights is null ? DestinationWeight.Of(availableDestinations[i]) : weights[i];
            if (weight == 0)
            {
                continue;
            }

            long load = availableDestinations[i].ConcurrentRequestCount;
            if (best < 0 || (load + 1) * bestWeight < (bestLoad + 1) * weight)
            {
                best = i;
                bestLoad = load;
                bestWeight = weight;
            }
        }

        // Overloaded: (bestLoad + 1) / bestWeight + 1 <= scheduledLoad / scheduledWeight, without division.
        long scheduledLoad = availableDestinations[scheduled].ConcurrentRequestCount;
        long scheduledWeight = weights is null ? DestinationWeight.Of(availableDestinations[scheduled]) : weights[scheduled];
        return scheduledWeight * (bestLoad + 1 + bestWeight) <= scheduledLoad * bestWeight
            ? availableDestinations[best]
            : availableDestinations[scheduled];
    }
}
