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
        var counts = Pick(new WeightedRoundRobinPolicy(new WeightedScheduleCache(new DrainedDestinationFilter())), cluster, destinations, 900);
        Assert.Equal(500, counts["d0"]);
        Assert.Equal(300, counts["d1"]);
        Assert.Equal(100, counts["d2"]);
    }

    [Fact]
    public void LeastRequests_EqualLoad_FollowsWeights()
    {
        var (cluster, destinations) = Cluster("5", "3", "1");
        var counts = Pick(new WeightedLeastRequestsPolicy(new WeightedScheduleCache(new DrainedDestinationFilter())), cluster, destinations, 900);
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
        var counts = Pick(new WeightedLeastRequestsPolicy(new WeightedScheduleCache(new DrainedDestinationFilter())), cluster, destinations, 100);
        Assert.Equal(100, counts["d1"]);
    }

    [Fact]
    public void LeastRequests_SlightImbalance_KeepsTheWeightedOrder()
    {
        var (cluster, destinations) = Cluster("1", "1");
        destinations[0].ConcurrentRequestCount = 1;
        var counts = Pick(new WeightedLeastRequestsPolicy(new WeightedScheduleCache(new DrainedDestinationFilter())), cluster, destinations, 100);
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
        Assert.Null(new WeightedRoundRobinPolicy(new WeightedScheduleCache(new DrainedDestinationFilter())).PickDestination(new DefaultHttpContext(), cluster, destinations));
        Assert.Null(new WeightedLeastRequestsPolicy(new WeightedScheduleCache(new DrainedDestinationFilter())).PickDestination(new DefaultHttpContext(), cluster, destinations));
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
        var cache = new WeightedScheduleCache(new DrainedDestinationFilter());
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

    [Theory]
    [InlineData("WeightedRoundRobin")]
    [InlineData("WeightedLeastRequests")]
    public void ARetrysNarrowerList_NeitherReplacesTheScheduleNorMovesItsCursor_AndSharesRetriesByWeight(string name)
    {
        var (cluster, destinations) = WeightedPoliciesTests.Cluster("5", "3", "1");
        cluster.DestinationsState = new ClusterDestinationsState(destinations, destinations);
        var cache = new WeightedScheduleCache(new DrainedDestinationFilter());
        Yarp.ReverseProxy.LoadBalancing.ILoadBalancingPolicy policy = name == "WeightedRoundRobin" ? new WeightedRoundRobinPolicy(cache) : new WeightedLeastRequestsPolicy(cache);
        var withoutD2 = new[] { destinations[0], destinations[1] };
        var context = new DefaultHttpContext();

        var first = new List<string>();
        var retries = new Dictionary<string, int>();
        for (var i = 0; i < 900; i++)
        {
            var picked = policy.PickDestination(context, cluster, destinations)!;
            first.Add(picked.DestinationId);
            if (picked == destinations[2])
            {
                // d2 failed this request: eight retries' worth of picks from the narrowed list.
                for (var r = 0; r < 8; r++)
                {
                    var retry = policy.PickDestination(context, cluster, withoutD2)!;
                    retries[retry.DestinationId] = retries.GetValueOrDefault(retry.DestinationId) + 1;
                }
            }
        }

        // First attempts follow the cluster's order exactly, as if no retry had happened.
        Assert.Equal(500, first.Count(d => d == "d0"));
        Assert.Equal(300, first.Count(d => d == "d1"));
        Assert.Equal(100, first.Count(d => d == "d2"));
        // Retries (100 x 8) split 5:3 between the two left.
        Assert.Equal(500, retries["d0"]);
        Assert.Equal(300, retries["d1"]);
    }
}
