using System.Diagnostics.CodeAnalysis;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Yarp.ReverseProxy;
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
    public void DestinationsThatNoLongerExist_AreLetGo_WithinAMinute()
    {
        // Per-pod destinations from DNS come and go with every rolling update; each kept about 9 KB
        // of figures for the process's life.
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var meterFactory = services.GetRequiredService<IMeterFactory>();
        var clock = new FakeTimeProvider();
        var cluster = new ClusterState("c1");
        cluster.Destinations.TryAdd("pods[10.0.0.1]", new DestinationState("pods[10.0.0.1]"));
        cluster.Destinations.TryAdd("pods[10.0.0.2]", new DestinationState("pods[10.0.0.2]"));
        using var stats = new DestinationStats(meterFactory, clock, new OneCluster(cluster));
        var duration = meterFactory.Create(new MeterOptions(GatewayMeter.Name)).CreateHistogram<double>("gateway.proxy.request.duration");
        foreach (var destination in cluster.Destinations.Keys)
        {
            duration.Record(0.001, new("cluster", "c1"), new("destination", destination), new("status_class", "2xx"));
        }

        Assert.Equal(2, stats.Count);

        cluster.Destinations.TryRemove("pods[10.0.0.2]", out _); // the pod went away
        clock.Advance(DestinationStats.PruneInterval - TimeSpan.FromTicks(1));
        Assert.Equal(2, stats.Count);
        clock.Advance(TimeSpan.FromTicks(1));

        Assert.Equal(1, stats.Count);
        Assert.NotNull(stats.For("c1", "pods[10.0.0.1]"));
        Assert.Null(stats.For("c1", "pods[10.0.0.2]"));
    }

    private sealed class OneCluster(ClusterState cluster) : IProxyStateLookup
    {
        public IEnumerable<RouteModel> GetRoutes() => [];

        public bool TryGetRoute(string id, [NotNullWhen(true)] out RouteModel? route)
        {
            route = null;
            return false;
        }

        public IEnumerable<ClusterState> GetClusters() => [cluster];

        public bool TryGetCluster(string id, [NotNullWhen(true)] out ClusterState? found)
        {
            found = id == cluster.ClusterId ? cluster : null;
            return found is not null;
        }
    }
}
