using System.Threading.RateLimiting;
using YarpGateway.Admission;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Admission;

public class FifoConcurrencyLimiterTests
{
    [Fact]
    public void FreeSlots_AreTakenAndGivenBack_WithoutAllocating()
    {
        var limiter = new FifoConcurrencyLimiter(limit: 2, queueLimit: 0);
        _ = limiter.AttemptAcquire(1); // the first call may allocate the runtime's own state
        limiter.AttemptAcquire(1).Dispose();

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            using var lease = limiter.AttemptAcquire(1);
            Assert.True(lease.IsAcquired);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(1, limiter.InUse);
    }

    [Fact]
    public void TheLimitHolds_AndAReleasedSlotCanBeTakenAgain()
    {
        var limiter = new FifoConcurrencyLimiter(limit: 2, queueLimit: 0);
        var a = limiter.AttemptAcquire(1);
        var b = limiter.AttemptAcquire(1);
        using var refused = limiter.AttemptAcquire(1);

        Assert.True(a.IsAcquired && b.IsAcquired);
        Assert.False(refused.IsAcquired);
        a.Dispose();
        Assert.True(limiter.AttemptAcquire(1).IsAcquired);
        Assert.Equal(2, limiter.InUse);
    }

    [Fact]
    public async Task Waiters_AreServedOldestFirst_AndNewcomersDoNotJumpTheQueue()
    {
        var limiter = new FifoConcurrencyLimiter(limit: 1, queueLimit: 3);
        var held = limiter.AttemptAcquire(1);
        var first = limiter.AcquireAsync(1).AsTask();
        var second = limiter.AcquireAsync(1).AsTask();
        var third = limiter.AcquireAsync(1).AsTask();
        using var overflow = await limiter.AcquireAsync(1);

        Assert.False(overflow.IsAcquired); // the queue holds three
        Assert.Equal(3, limiter.Queued);

        held.Dispose();
        var lease = await first.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(lease.IsAcquired);
        Assert.False(second.IsCompleted || third.IsCompleted);
        using (var newcomer = limiter.AttemptAcquire(1))
        {
            Assert.False(newcomer.IsAcquired); // others are waiting: a newcomer queues behind them
        }

        lease.Dispose();
        (await second.WaitAsync(TimeSpan.FromSeconds(5))).Dispose();
        (await third.WaitAsync(TimeSpan.FromSeconds(5))).Dispose();
        Assert.Equal((0, 0), (limiter.InUse, limiter.Queued));
    }

    [Fact]
    public async Task ACancelledWaiter_LeavesTheQueue_AndTheSlotGoesToTheNext()
    {
        var limiter = new FifoConcurrencyLimiter(limit: 1, queueLimit: 2);
        var held = limiter.AttemptAcquire(1);
        using var cancel = new CancellationTokenSource();
        var cancelled = limiter.AcquireAsync(1, cancel.Token).AsTask();
        var next = limiter.AcquireAsync(1).AsTask();

        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(1, limiter.Queued);

        held.Dispose();
        var lease = await next.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(lease.IsAcquired);
        Assert.Equal((1, 0), (limiter.InUse, limiter.Queued));
    }

    [Fact]
    public async Task UnderContention_NeverMoreThanTheLimitHold_AndEveryWaiterIsServed()
    {
        const int Limit = 3, Workers = 8, PerWorker = 5000;
        var limiter = new FifoConcurrencyLimiter(Limit, queueLimit: Workers);
        var holding = 0;
        var most = 0;
        var served = 0;

        async Task WorkAsync()
        {
            for (var i = 0; i < PerWorker; i++)
            {
                using var lease = await limiter.AcquireAsync(1);
                Assert.True(lease.IsAcquired);
                var now = Interlocked.Increment(ref holding);
                HighWaterMark.Raise(ref most, now);
                if (i % 7 == 0)
                {
                    await Task.Yield(); // sometimes hold across a yield, so waiters queue
                }

                Interlocked.Decrement(ref holding);
                Interlocked.Increment(ref served);
            }
        }

        // Every slot taken first, so every worker starts in the queue and the released slots are handed
        // over (on a busy machine the workers may otherwise run one after another and never queue).
        var held = Enumerable.Range(0, Limit).Select(_ => limiter.AttemptAcquire(1)).ToList();
        var workers = Task.WhenAll(Enumerable.Range(0, Workers).Select(_ => Task.Run(WorkAsync)));
        Assert.True(await Eventually.TrueAsync(() => limiter.Queued == Workers, TimeSpan.FromSeconds(10)), $"{limiter.Queued} queued");
        held.ForEach(lease => lease.Dispose());
        await workers.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(Workers * PerWorker, served);
        Assert.InRange(most, 1, Limit);
        Assert.Equal((0, 0), (limiter.InUse, limiter.Queued));
    }
}
