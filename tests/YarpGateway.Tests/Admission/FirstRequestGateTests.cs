using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Time.Testing;
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
        var clock = new FakeTimeProvider();
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
        var clock = new TimerCountingClock();
        using var slots = new ConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = 1, QueueLimit = 0 });
        var expired = 0;
        var gate = new FirstRequestGate(slots.AttemptAcquire(), MaxTime, clock, () => expired++);

        gate.Release();
        gate.Release();
        clock.Advance(MaxTime * 2);

        Assert.Equal(1, slots.GetStatistics()!.CurrentAvailablePermits);
        Assert.Equal(0, expired);
        Assert.Equal(1, clock.Created);
        Assert.Equal(1, clock.Disposed);
    }

    [Fact]
    public void Released_NoLongerHoldsItsTimer()
    {
        // The gate lives as long as its connection (a WebSocket's, a keep-alive client's): the timer
        // it no longer needs must not, which a weak reference to it shows once the gate lets go.
        var clock = new TimerCountingClock();
        using var slots = new ConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = 1, QueueLimit = 0 });
        var gate = new FirstRequestGate(slots.AttemptAcquire(), MaxTime, clock);
        var timer = clock.LastTimer!;
        clock.LastTimer = null;

        gate.Release();

        Assert.False(IsReachable(timer));
        GC.KeepAlive(gate);
    }

    [Fact]
    public void FirstRequestForwarded_FreesTheSlot()
    {
        using var slots = new ConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = 1, QueueLimit = 0 });
        var gate = new FirstRequestGate(slots.AttemptAcquire(), MaxTime, new FakeTimeProvider());
        var context = new DefaultHttpContext();
        context.Features.Set(gate);

        FirstRequestGate.ReleaseOnForward(context);

        Assert.Equal(1, slots.GetStatistics()!.CurrentAvailablePermits);
    }

    [Theory]
    [InlineData(5, true)] // under half the 20 ms target: the gateway keeps up, the backend's time is not its load
    [InlineData(15, false)] // past half of it: the answers coming back count, the place waits for the response
    public void FirstRequestForwarded_GivesTheWindowsPlaceBack_OnlyWhileTheGatewayKeepsUp(int delayMs, bool givenBack)
    {
        var window = new AcceptWindow(4);
        window.Update(TimeSpan.FromMilliseconds(delayMs), TimeSpan.FromMilliseconds(20));
        Assert.True(window.TryTake());
        var gate = new FirstRequestGate(null, MaxTime, new FakeTimeProvider(), window: new AcceptWindowSlot(window, new NoHolders()));
        var context = new DefaultHttpContext();
        context.Features.Set(gate);

        FirstRequestGate.ReleaseOnForward(context);
        Assert.Equal(givenBack ? 0 : 1, window.InUse);

        gate.Release(); // the response starts
        Assert.Equal(0, window.InUse);
    }

    [Fact]
    public void ARequestWithNoGate_IsLeftAlone() => FirstRequestGate.ReleaseOnForward(new DefaultHttpContext());

    private sealed class NoHolders : AcceptWindowSlot.IHolders
    {
        public void Took()
        {
        }

        public void Gave()
        {
        }
    }

    // The timer's only strong reference, after the test lets go of its own, is the gate's (FakeTimeProvider
    // forgets a disposed timer). NoInlining: no copy of the reference stays in the caller's frame.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static bool IsReachable(WeakReference timer)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return timer.IsAlive;
    }

    /// <summary>A fake clock that counts the timers created and disposed.</summary>
    private sealed class TimerCountingClock : FakeTimeProvider
    {
        public int Created { get; private set; }

        public int Disposed { get; private set; }

        /// <summary>The last timer created, weakly.</summary>
        public WeakReference? LastTimer { get; set; }

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            Created++;
            var timer = new Counted(base.CreateTimer(callback, state, dueTime, period), this);
            LastTimer = new WeakReference(timer);
            return timer;
        }

        private sealed class Counted(ITimer inner, TimerCountingClock clock) : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => inner.Change(dueTime, period);

            public void Dispose()
            {
                clock.Disposed++;
                inner.Dispose();
            }

            public ValueTask DisposeAsync()
            {
                Dispose();
                return ValueTask.CompletedTask;
            }
        }
    }
}
