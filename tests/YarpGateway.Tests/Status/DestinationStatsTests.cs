using YarpGateway.Status;

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
}
