using System.Threading.RateLimiting;
using YarpGateway.Admission;
using YarpGateway.Tests.Resilience;

namespace YarpGateway.Tests.Admission;

public class FirstRequestGateTests
{
    private static readonly TimeSpan MaxTime = TimeSpan.FromSeconds(1);

    [Fact]
    public void PastMaxTime_TheSlotIsFreedOnce_AndCountedAsExpired()
    {
        var clock = new ManualTimeProvider();
        using var slots = new ConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = 1, QueueLimit = 0 });
        var expired = 0;
        var gate = new FirstRequestGate(slots.AttemptAcquire(), MaxTime, clock, () => expired++);

        clock.Advance(MaxTime - TimeSpan.FromTicks(1));
        Assert.Equal(0, slots.GetStatistics()!.CurrentAvailablePermits);
        Assert.Equal(0, expired);

        clock.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(1, slots.GetStatistics()!.CurrentAvailablePermits);
        Assert.Equal(1, expired);

        gate.Release(); // the connection ends later: nothing more to free
        Assert.Equal(1, slots.GetStatistics()!.CurrentAvailablePermits);
        Assert.Equal(1, expired);
    }

    [Fact]
    public void ReleasedInTime_IsNotExpired_AndItsTimerIsGone()
    {
        var clock = new ManualTimeProvider();
        using var slots = new ConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = 1, QueueLimit = 0 });
        var expired = 0;
        var gate = new FirstRequestGate(slots.AttemptAcquire(), MaxTime, clock, () => expired++);

        gate.Release();
        gate.Release();
        clock.Advance(MaxTime * 2);

        Assert.Equal(1, slots.GetStatistics()!.CurrentAvailablePermits);
        Assert.Equal(0, expired);
        Assert.Equal(0, clock.PendingTimers);
    }
}
