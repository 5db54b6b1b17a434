using Microsoft.Extensions.Time.Testing;
using System.Threading.RateLimiting;
using YarpGateway.Admission;
using YarpGateway.Tests.Resilience;

namespace YarpGateway.Tests.Admission;

/// <summary>The adaptive connection rate, as units: the controller on synthetic delay series, and its adjustable bucket on a manual clock.</summary>
public class AdaptiveAdmissionTests
{
    private static readonly TimeSpan Target = TimeSpan.FromMilliseconds(20);

    [Fact]
    public void WithDemandAndNoDelay_TheRateRisesToItsMaximum_AndNeverPast()
    {
        var controller = new AdaptiveRateController(1000, 100, 20_000, Target);
        var rates = Enumerable.Range(0, 40).Select(_ => controller.Update(TimeSpan.FromMilliseconds(1), demand: true)).ToList();

        Assert.True(rates.Zip(rates.Skip(1)).All(p => p.Second >= p.First), "the rate fell without delay");
        Assert.Equal(20_000, rates[^1]);
        Assert.True(rates.IndexOf(20_000) <= 15, $"too slow: {string.Join(", ", rates.Select(r => r.ToString("0")))}");
    }

    [Fact]
    public void OverTheTarget_TheRateIsCutQuickly_ToItsMinimum_AndNeverBelow()
    {
        var controller = new AdaptiveRateController(10_000, 100, 20_000, Target);
        var rates = Enumerable.Range(0, 30).Select(_ => controller.Update(TimeSpan.FromMilliseconds(200), demand: true)).ToList();

        Assert.True(rates[0] <= 7_000);
        Assert.True(rates[3] < 3_500, "not cut quickly");
        Assert.Equal(100, rates[^1]);
        Assert.DoesNotContain(rates, r => r < 100);
    }

    [Fact]
    public void TheLog_SaysEachRiseOrCutAtMostOnceASecond_AndOfADriftBackOnlyItsArrival()
    {
        var controller = new AdaptiveRateController(1000, 100, 20_000, Target);
        var logged = controller.Rate;
        var sinceLogged = TimeSpan.Zero;
        var lines = new List<(double Before, double After, bool Drift)>();
        void Step(TimeSpan delay, bool demand)
        {
            var rate = controller.Update(delay, demand);
            sinceLogged += TimeSpan.FromMilliseconds(100); // one update every 100 ms
            if (controller.ShouldLog(logged, rate, sinceLogged))
            {
                lines.Add((logged, rate, controller.Drifting));
                logged = rate;
                sinceLogged = TimeSpan.Zero;
            }
        }

        for (var i = 0; i < 30; i++)
        {
            Step(TimeSpan.FromMilliseconds(1), demand: true); // a storm: the rate rises for 3 s
        }

        var rises = lines.Count;
        for (var i = 0; i < 200; i++)
        {
            Step(TimeSpan.Zero, demand: false); // over: it drifts back for 20 s
        }

        Assert.InRange(rises, 2, 3); // a line a second while it rises
        Assert.All(lines.Take(rises), l => Assert.True(l.After > l.Before));
        var drift = Assert.Single(lines.Skip(rises)); // (every fifth used to be a line: 6 of them)
        Assert.True(drift.Drift);
        Assert.Equal(1000, drift.After);
    }

    [Fact]
    public void WithoutDemand_TheRateDriftsBackToTheInitialRate()
    {
        var controller = new AdaptiveRateController(1000, 100, 20_000, Target);
        for (var i = 0; i < 20; i++)
        {
            controller.Update(TimeSpan.Zero, demand: true);
        }

        Assert.True(controller.Rate > 5000);
        for (var i = 0; i < 200; i++)
        {
            controller.Update(TimeSpan.Zero, demand: false);
        }

        Assert.Equal(1000, controller.Rate);

        for (var i = 0; i < 20; i++)
        {
            controller.Update(TimeSpan.FromSeconds(1), demand: true);
        }

        Assert.Equal(100, controller.Rate);
        for (var i = 0; i < 100; i++)
        {
            controller.Update(TimeSpan.Zero, demand: false);
        }

        Assert.Equal(1000, controller.Rate);
    }

    [Fact]
    public void WhileOpenConnectionsAreBusy_TheStricterTargetHolds_ADelayBetweenTheTwoCutsTheRate()
    {
        var controller = new AdaptiveRateController(1000, 100, 20_000, Target, TimeSpan.FromMilliseconds(5));
        var between = TimeSpan.FromMilliseconds(10); // over the established target, under the other

        var rising = Enumerable.Range(0, 5).Select(_ => controller.Update(between, demand: true)).ToList();
        Assert.True(rising[^1] > 1000, "with nobody to protect, 10 ms is under the target: the rate should rise");
        Assert.Equal(Target, controller.Target);

        var cut = Enumerable.Range(0, 5).Select(_ => controller.Update(between, demand: true, established: true)).ToList();
        Assert.True(cut.Zip(cut.Skip(1)).All(p => p.Second < p.First), $"not cut: {string.Join(", ", cut.Select(r => r.ToString("0")))}");
        Assert.Equal(TimeSpan.FromMilliseconds(5), controller.Target);

        // Never looser than the main target, whatever it is given.
        Assert.Equal(Target, new AdaptiveRateController(1000, 100, 20_000, Target, TimeSpan.FromSeconds(1)).EstablishedTargetDelay);
        Assert.Equal(Target, new AdaptiveRateController(1000, 100, 20_000, Target).EstablishedTargetDelay);
    }

    [Fact]
    public void TheEstablishedTarget_AppliesFromTheConfiguredRateOfRequests_AndHoldsASecondAfterTheyStop()
    {
        var clock = new FakeTimeProvider();
        using var options = Telemetry.SchedulerDelayProbeTests.ProbeOptions();
        using var probe = new YarpGateway.Telemetry.SchedulerDelayProbe(Telemetry.TestMetrics.Scheduler(), clock, options); // not started: no delay
        var established = new EstablishedRequests();
        using var rate = new AdaptiveConnectionRate(new AdaptiveRateController(1000, 100, 20_000, Target, TimeSpan.FromMilliseconds(5)), burst: 10, queueLimit: 10,
            probe, socketProbe: null, clock, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, established: (established, 100));

        // One update every 100 ms (ten 10 ms refills); 100 a second is 10 requests an update.
        void Update(int requests)
        {
            for (var i = 0; i < requests; i++)
            {
                established.Count();
            }

            for (var i = 0; i < AdaptiveConnectionRate.RefillsPerUpdate; i++)
            {
                clock.Advance(AdaptiveConnectionRate.RefillPeriod);
            }
        }

        Update(requests: 9); // 90 a second: under the rate
        Assert.False(rate.ProtectingEstablished);
        Assert.Equal(Target, rate.Target);

        Update(requests: 10);
        Assert.True(rate.ProtectingEstablished);
        Assert.Equal(TimeSpan.FromMilliseconds(5), rate.Target);

        // A storm that holds their requests up for most of a second does not turn the protection off.
        for (var i = 0; i < 9; i++)
        {
            Update(requests: 0);
            Assert.True(rate.ProtectingEstablished, $"off after {(i + 1) * 100} ms without requests");
        }

        Update(requests: 0); // a second without
        Assert.False(rate.ProtectingEstablished);
        Assert.Equal(Target, rate.Target);
        Assert.Equal(12, rate.Updates);
    }

    /// <summary>
    /// A machine that takes on <paramref name="capacity"/> new connections a second; anything faster
    /// queues, and the delay is the queue's length in time. Under a storm the rate must settle near the
    /// capacity: after the first 3 s, within half and one and a half times it, and the delay bounded.
    /// </summary>
    [Theory]
    [InlineData(800)]
    [InlineData(5_000)]
    [InlineData(30_000)]
    public void UnderAStorm_TheRateSettlesNearWhatTheMachineAbsorbs(double capacity)
    {
        var controller = new AdaptiveRateController(1000, 100, 100_000, Target);
        var backlog = 0.0;
        var steady = new List<(double Rate, double Delay)>();
        for (var step = 0; step < 300; step++) // 30 s of 100 ms updates
        {
            var delay = TimeSpan.FromSeconds(backlog / capacity);
            var rate = controller.Update(delay, demand: true);
            backlog = Math.Max(0, backlog + ((rate - capacity) * 0.1));
            if (step >= 30)
            {
                steady.Add((rate, delay.TotalSeconds));
            }
        }

        Assert.All(steady, s => Assert.InRange(s.Rate, capacity * 0.5, capacity * 1.5));
        Assert.True(steady.Average(s => s.Rate) >= capacity * 0.75, $"mean {steady.Average(s => s.Rate):0} of {capacity}");
        Assert.True(steady.Max(s => s.Delay) < 0.1, $"delay up to {steady.Max(s => s.Delay) * 1000:0} ms");
    }

    [Fact]
    public async Task TheBucket_GivesItsBurst_ThenServesWaitersInOrderAtTheRate_WhichCanChange()
    {
        var clock = new FakeTimeProvider();
        using var bucket = new AdjustableTokenBucket(ratePerSecond: 100, burst: 2, queueLimit: 10, clock);

        Assert.True(bucket.AttemptAcquire().IsAcquired);
        Assert.True(bucket.AttemptAcquire().IsAcquired);
        Assert.False(bucket.AttemptAcquire().IsAcquired);
        Assert.True(bucket.TakeStarved());
        Assert.False(bucket.TakeStarved());

        var waiters = Enumerable.Range(0, 4).Select(_ => bucket.AcquireAsync().AsTask()).ToArray();
        Assert.Equal(4, bucket.Queued);
        clock.Advance(TimeSpan.FromMilliseconds(10)); // one token at 100/s
        bucket.Refill();
        Assert.True((await waiters[0].WaitAsync(TimeSpan.FromSeconds(5))).IsAcquired);
        Assert.False(waiters[1].IsCompleted);

        bucket.RatePerSecond = 200; // two tokens per 10 ms from now on
        clock.Advance(TimeSpan.FromMilliseconds(10));
        bucket.Refill();
        Assert.True((await waiters[1].WaitAsync(TimeSpan.FromSeconds(5))).IsAcquired);
        Assert.True((await waiters[2].WaitAsync(TimeSpan.FromSeconds(5))).IsAcquired);
        Assert.False(waiters[3].IsCompleted);
        Assert.True(bucket.TakeStarved()); // someone is still waiting
    }

    [Fact]
    public async Task TheBucket_ACancelledWaiterLeavesTheQueue_AndAFullQueueRefuses()
    {
        var clock = new FakeTimeProvider();
        using var bucket = new AdjustableTokenBucket(ratePerSecond: 100, burst: 1, queueLimit: 2, clock);
        Assert.True(bucket.AttemptAcquire().IsAcquired);

        using var cancel = new CancellationTokenSource();
        var cancelled = bucket.AcquireAsync(1, cancel.Token).AsTask();
        var second = bucket.AcquireAsync().AsTask();
        Assert.False((await bucket.AcquireAsync()).IsAcquired); // the queue holds two

        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        Assert.Equal(1, bucket.Queued);

        clock.Advance(TimeSpan.FromMilliseconds(10));
        bucket.Refill();
        Assert.True((await second.WaitAsync(TimeSpan.FromSeconds(5))).IsAcquired);
    }
}
