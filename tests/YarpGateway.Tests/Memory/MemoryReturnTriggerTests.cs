using YarpGateway.Memory;

namespace YarpGateway.Tests.Memory;

public class MemoryReturnTriggerTests
{
    private static readonly MemoryOptions Options = new()
    {
        MinConnectionDrop = 100,
        SettleTime = TimeSpan.FromSeconds(5),
        MaxHeapBytes = 64L << 20,
        MinInterval = TimeSpan.FromMinutes(2),
    };

    // Feeds one sample a second from second `from`, returning each second's decision.
    private static List<bool> Run(MemoryReturnTrigger trigger, int from, params long[] open)
        => open.Select((count, i) => trigger.Observe(TimeSpan.FromSeconds(from + i), count, Options)).ToList();

    [Fact]
    public void HalfTheClientsGone_ForTheSettleTime_IsDecidedOnce()
    {
        var trigger = new MemoryReturnTrigger();
        var decisions = Run(trigger, 0, 0, 500, 1000, 1000, 300, 300, 300, 300, 300, 300, 300, 300, 300);

        // The drop is first seen at second 4; settled at second 9; then a new peak of 300 starts.
        Assert.True(decisions[9]);
        Assert.Single(decisions, d => d);
        Assert.Equal(300, trigger.Peak);
    }

    [Theory]
    [InlineData(150, 60)]   // down by 90, fewer than MinConnectionDrop
    [InlineData(1000, 600)] // down by 400, but more than half still open
    public void ADropTooSmall_DoesNothing(long peak, long after)
    {
        var trigger = new MemoryReturnTrigger();
        var decisions = Run(trigger, 0, [peak, .. Enumerable.Repeat(after, 30)]);
        Assert.All(decisions, Assert.False);
        Assert.Equal(peak, trigger.Peak);
    }

    [Fact]
    public void ClientsComingBackWithinTheSettleTime_StartTheWaitAgain()
    {
        var trigger = new MemoryReturnTrigger();

        // Down at 1, back above half at 4, down again at 5: settled only at 10.
        var decisions = Run(trigger, 0, 1000, 100, 100, 100, 900, 100, 100, 100, 100, 100, 100);
        Assert.Equal(10, decisions.IndexOf(true));
    }

    [Fact]
    public void ASecondDrop_WaitsForTheMinInterval()
    {
        var trigger = new MemoryReturnTrigger();
        Assert.Contains(true, Run(trigger, 0, 1000, 0, 0, 0, 0, 0, 0));

        // Another wave comes and goes at once: nothing until two minutes after the first decision (at 6 s).
        var decisions = Run(trigger, 10, [1000, .. Enumerable.Repeat(0L, 130)]);
        Assert.Equal(126, 10 + decisions.IndexOf(true));
        Assert.Single(decisions, d => d);
    }

    [Fact]
    public void TheValidator_ListsEveryError()
    {
        var failures = new MemoryOptionsValidator().Validate(null, new MemoryOptions
        {
            MinConnectionDrop = 0,
            SettleTime = TimeSpan.FromSeconds(-1),
            MaxHeapBytes = 1000,
            MinInterval = TimeSpan.FromSeconds(-1),
        }).Failures!.ToList();
        Assert.Equal(4, failures.Count);
        Assert.Contains(failures, f => f.Contains("Gateway:Memory:MinConnectionDrop must be at least 1; got 0.", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("Gateway:Memory:MaxHeapBytes must be at least 1048576 (1 MiB); got 1000.", StringComparison.Ordinal));
        Assert.True(new MemoryOptionsValidator().Validate(null, new MemoryOptions()).Succeeded);
    }
}
