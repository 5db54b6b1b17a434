using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Model;
using YarpGateway.LoadBalancing;

namespace YarpGateway.Tests.LoadBalancing;

public class WeightedPoliciesTests
{
    internal static (ClusterState Cluster, DestinationState[] Destinations) Cluster(params string?[] weights)
    {
        var destinations = weights.Select((w, i) => new DestinationState($"d{i}", new DestinationModel(new DestinationConfig
        {
            Address = $"http://127.0.0.1:{1000 + i}",
            Metadata = w is null ? null : new Dictionary<string, string> { ["Weight"] = w },
        }))).ToArray();
        return (new ClusterState("c"), destinations);
    }

    private static Dictionary<string, int> Pick(Yarp.ReverseProxy.LoadBalancing.ILoadBalancingPolicy policy, ClusterState cluster, DestinationState[] destinations, int times)
    {
        var counts = new Dictionary<string, int>();
        var context = new DefaultHttpContext();
        for (var i = 0; i < times; i++)
        {
            var picked = policy.PickDestination(context, cluster, destinations)!;
            counts[picked.DestinationId] = counts.GetValueOrDefault(picked.DestinationId) + 1;
        }

        return counts;
    }

    [Fact]
    public void RoundRobin_SplitsExactlyByWeightOverWholeCycles()
    {
        var (cluster, destinations) = Cluster("5", "3", "1");
        var counts = Pick(new WeightedRoundRobinPolicy(new WeightedScheduleCache()), cluster, destinations, 900);
        Assert.Equal(500, counts["d0"]);
        Assert.Equal(300, counts["d1"]);
        Assert.Equal(100, counts["d2"]);
    }

    [Fact]
    public void LeastRequests_EqualLoad_FollowsWeights()
    {
        var (cluster, destinations) = Cluster("5", "3", "1");
        var counts = Pick(new WeightedLeastRequestsPolicy(new WeightedScheduleCache()), cluster, destinations, 900);
        Assert.Equal(500, counts["d0"]);
        Assert.Equal(300, counts["d1"]);
        Assert.Equal(100, counts["d2"]);
    }

    [Fact]
    public void LeastRequests_OverloadedDestination_IsSkippedForTheLeastLoaded()
    {
        var (cluster, destinations) = Cluster("1", "1");
        destinations[0].ConcurrentRequestCount = 10; // stuck backend
        destinations[1].ConcurrentRequestCount = 2;
        var counts = Pick(new WeightedLeastRequestsPolicy(new WeightedScheduleCache()), cluster, destinations, 100);
        Assert.Equal(100, counts["d1"]);
    }

    [Fact]
    public void LeastRequests_SlightImbalance_KeepsTheWeightedOrder()
    {
        var (cluster, destinations) = Cluster("1", "1");
        destinations[0].ConcurrentRequestCount = 1;
        var counts = Pick(new WeightedLeastRequestsPolicy(new WeightedScheduleCache()), cluster, destinations, 100);
        Assert.Equal(50, counts["d0"]);
    }

    [Fact]
    public void DrainedFilter_RemovesWeightZero_AndReusesTheListWhileNothingChanges()
    {
        var (cluster, destinations) = Cluster("0", "2", null);
        var filter = new DrainedDestinationFilter();
        var first = filter.Filter(cluster, destinations);
        Assert.Equal(["d1", "d2"], first.Select(d => d.DestinationId));
        Assert.Same(first, filter.Filter(cluster, destinations));

        var (other, undrained) = Cluster("1", "1");
        Assert.Same(undrained, filter.Filter(other, undrained));
    }

    [Fact]
    public void AllDrained_PicksNothing()
    {
        var (cluster, destinations) = Cluster("0", "0");
        Assert.Null(new WeightedRoundRobinPolicy(new WeightedScheduleCache()).PickDestination(new DefaultHttpContext(), cluster, destinations));
        Assert.Null(new WeightedLeastRequestsPolicy(new WeightedScheduleCache()).PickDestination(new DefaultHttpContext(), cluster, destinations));
        Assert.Empty(new DrainedDestinationFilter().Filter(cluster, destinations));
    }
}

public class WeightedPoliciesAllocationTests
{
    [Fact]
    public void PickingAndFiltering_AllocateNothingOnceWarm()
    {
        var (cluster, destinations) = WeightedPoliciesTests.Cluster("1", "2", "3", "4");
        var context = new DefaultHttpContext();
        var cache = new WeightedScheduleCache();
        var roundRobin = new WeightedRoundRobinPolicy(cache);
        var leastRequests = new WeightedLeastRequestsPolicy(cache);
        var filter = new DrainedDestinationFilter();

        void PickMany()
        {
            for (var i = 0; i < 1000; i++)
            {
                var available = filter.Filter(cluster, destinations);
                roundRobin.PickDestination(context, cluster, available);
                leastRequests.PickDestination(context, cluster, available);
            }
        }

        PickMany(); // builds the schedule and the filtered list once
        var before = GC.GetAllocatedBytesForCurrentThread();
        PickMany();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
