using Microsoft.Extensions.Time.Testing;
using YarpGateway.Telemetry;

namespace YarpGateway.Tests.Telemetry;

public class LogThrottleTests
{
    private sealed class Lines : ILogger
    {
        public List<string> Written { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => Written.Add($"{logLevel} [{eventId.Name}] {formatter(state, exception)}");
    }

    [Fact]
    public void ABurstWithNoLaterLine_StillHasItsCountWritten_OnceTheKindIsQuiet_Once()
    {
        var clock = new FakeTimeProvider();
        var log = new Lines();
        var throttle = new LogThrottle(clock, log);

        Assert.True(throttle.ShouldLog("websocket.backend_lost", out var first));
        Assert.Equal(0, first);
        for (var i = 0; i < 49; i++)
        {
            Assert.False(throttle.ShouldLog("websocket.backend_lost", out _));
        }

        clock.Advance(TimeSpan.FromMilliseconds(1999));
        Assert.Empty(log.Written);
        clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal("Information [LogSuppressed] 49 more 'websocket.backend_lost' events were not logged after the last line about them; none in the 2 s since.", Assert.Single(log.Written));

        // Nothing more held back: nothing more written, and the next event is a line of its own.
        clock.Advance(TimeSpan.FromSeconds(5));
        Assert.Single(log.Written);
        Assert.True(throttle.ShouldLog("websocket.backend_lost", out var next));
        Assert.Equal(0, next);
    }

    [Fact]
    public void AKindThatKeepsHappening_CarriesItsOwnCount_AndAQuietOneIsWrittenAtItsLinesLevel()
    {
        var clock = new FakeTimeProvider();
        var log = new Lines();
        var throttle = new LogThrottle(clock, log);

        // a happens every 100 ms for 3 s: its lines carry the counts, and nothing is written for it.
        var carried = 0L;
        var lines = 0;
        for (var t = 0; t < 30; t++)
        {
            if (throttle.ShouldLog("a", out var count, LogLevel.Warning))
            {
                lines++;
                carried += count;
            }

            if (t == 0)
            {
                Assert.True(throttle.ShouldLog("b", out _, LogLevel.Warning));
                Assert.False(throttle.ShouldLog("b", out _, LogLevel.Warning)); // b then goes quiet
            }

            clock.Advance(TimeSpan.FromMilliseconds(100));
        }

        Assert.Equal(3, lines);
        Assert.Equal(18, carried); // 27 held back in all: 18 carried by a's lines, the last 9 wait for its next one
        Assert.Equal("Warning [LogSuppressed] 1 more 'b' events were not logged after the last line about them; none in the 2 s since.", Assert.Single(log.Written));
    }

    [Fact]
    public void WithoutALogger_TheCountWaitsForTheNextLine()
    {
        var clock = new FakeTimeProvider();
        var throttle = new LogThrottle(clock);
        Assert.True(throttle.ShouldLog("k", out _));
        Assert.False(throttle.ShouldLog("k", out _));
        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.True(throttle.ShouldLog("k", out var suppressed));
        Assert.Equal(1, suppressed);
    }
}
