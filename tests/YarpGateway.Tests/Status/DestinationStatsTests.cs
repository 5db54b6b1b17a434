using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Yarp.ReverseProxy.Model;
using YarpGateway.Status;
using YarpGateway.Telemetry;

namespace YarpGateway.Tests.Status;

public class DestinationStatsTests
{
    [Fact]
    public void TheLastMinute_CountsOnlyItsSixtySeconds_WithPercentilesFromTheBuckets()
    {
        var stats = new DestinationStats.Stats();
        stats.Record(1_000, 0.001, error: false); // over a minute before: left out of the window
        for (var i = 0; i < 98; i++)
        {
            stats.Record(1_100, 0.003, error: false);
        }

        stats.Record(1_159, 0.3, error: true);
        stats.Record(1_159, 0.3, error: false);

        var (rps, p50, p99, history) = stats.LastMinute(1_159);

        Assert.Equal(101, stats.Requests); // since start
        Assert.Equal(1, stats.Errors);
        Assert.Equal(100 / 60.0, rps);
        Assert.Equal(5, p50); // the 3 ms requests fall in the 5 ms bucket
        Assert.Equal(500, p99); // the two 300 ms ones are the top 2 %
        Assert.Equal(98, history[59 - 59]); // 1,100 is 59 s before 1,159: the oldest slot
        Assert.Equal(2, history[59]);
    }

    [Fact]
    public void DestinationsThatNoLongerExist_AreLetGo_AtOnce_AndWhatTheyRecordAfterWithinAMinute()
    {
        // Per-pod destinations from DNS come and go with every rolling update; each kept about 9 KB
        // of figures for the process's life.
        var clock = new FakeTimeProvider();
        var cluster = Cluster("c1", ("pods[10.0.0.1]", "http://10.0.0.1/"), ("pods[10.0.0.2]", "http://10.0.0.2/"));
        using var stats = new DestinationStats(clock);
        stats.OnClusterAdded(cluster);
        foreach (var destination in cluster.Destinations.Keys)
        {
            stats.Record("c1", destination, 0.001, error: false);
        }

        Assert.Equal(2, stats.Count);

        cluster.Destinations.TryRemove("pods[10.0.0.2]", out _); // the pod went away
        stats.OnClusterChanged(cluster);
        Assert.Equal(1, stats.Count);
        Assert.NotNull(stats.For("c1", "pods[10.0.0.1]"));
        Assert.Null(stats.For("c1", "pods[10.0.0.2]"));

        stats.Record("c1", "pods[10.0.0.2]", 0.001, error: false); // a request that was under way when it went
        clock.Advance(DestinationStats.PruneInterval - TimeSpan.FromTicks(1));
        Assert.Equal(2, stats.Count);
        clock.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(1, stats.Count);
        Assert.Null(stats.For("c1", "pods[10.0.0.2]"));

        stats.OnClusterRemoved(cluster);
        Assert.Equal(0, stats.Count);
    }

    [Fact]
    public void ADestinationWhoseAddressIsEdited_StartsAfresh_OthersKeepTheirFigures()
    {
        var clock = new FakeTimeProvider();
        var cluster = Cluster("c1", ("a", "http://10.0.0.1/"), ("b", "http://10.0.0.2/"));
        using var stats = new DestinationStats(clock);
        stats.OnClusterAdded(cluster);
        stats.Record("c1", "a", 0.001, error: true); // a typo'd address: 502s
        stats.Record("c1", "b", 0.001, error: false);

        stats.OnClusterChanged(cluster); // a reload that changed something else (a weight): nothing is forgotten
        Assert.Equal((1, 1), (stats.For("c1", "a")!.Errors, stats.For("c1", "b")!.Requests));

        var corrected = Cluster("c1", ("a", "http://10.0.0.3/"), ("b", "http://10.0.0.2/"));
        stats.OnClusterChanged(corrected);
        Assert.Null(stats.For("c1", "a"));
        Assert.Equal(1, stats.For("c1", "b")!.Requests);

        stats.Record("c1", "a", 0.001, error: false);
        Assert.Equal((1, 0), (stats.For("c1", "a")!.Requests, stats.For("c1", "a")!.Errors));
        clock.Advance(DestinationStats.PruneInterval);
        Assert.Equal(2, stats.Count); // both still exist
    }

    private static ClusterState Cluster(string id, params (string Id, string Address)[] destinations)
    {
        var cluster = new ClusterState(id);
        foreach (var (destination, address) in destinations)
        {
            cluster.Destinations.TryAdd(destination, new DestinationState(destination, new DestinationModel(new Yarp.ReverseProxy.Configuration.DestinationConfig { Address = address })));
        }

        return cluster;
    }

    [Fact]
    public void EachProxiedRequest_IsCountedForTheDestinationThatAnsweredIt_FiveHundredsAsErrors()
    {
        // Recorded with the request's duration, not through a listener on the duration histogram: the figures must
        // not depend on anything listening to it.
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var clock = new FakeTimeProvider();
        using var stats = new DestinationStats(clock);
        var metrics = new RequestMetrics(services.GetRequiredService<IMeterFactory>(), stats);

        metrics.Request("r", "c1", "d1", 200, clientGone: false, TimeSpan.FromMilliseconds(3));
        metrics.Request("r", "c1", "d1", 502, clientGone: false, TimeSpan.FromMilliseconds(300));
        metrics.Request("r", "c1", "d1", 500, clientGone: true, TimeSpan.FromMilliseconds(1)); // the client left first: not the destination's error
        metrics.Request("r", "c1", "d2", 404, clientGone: false, TimeSpan.FromMilliseconds(1));
        metrics.Request("r", "c1", null, 503, clientGone: false, TimeSpan.FromMilliseconds(1)); // no destination was tried
        metrics.Request("r", null, null, 404, clientGone: false, TimeSpan.FromMilliseconds(1));

        Assert.Equal(2, stats.Count);
        var d1 = stats.For("c1", "d1")!;
        Assert.Equal(3, d1.Requests);
        Assert.Equal(1, d1.Errors);
        Assert.Equal(500, d1.LastMinute(stats.Now).P99Ms); // the 300 ms request's bucket
        Assert.Equal(1, stats.For("c1", "d2")!.Requests);
        Assert.Equal(0, stats.For("c1", "d2")!.Errors);
    }
}
