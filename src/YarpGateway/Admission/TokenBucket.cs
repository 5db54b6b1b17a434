using System.Threading.RateLimiting;

namespace YarpGateway.Admission;

/// <summary>
/// A token bucket that refills at an exact rate per second. The runtime's own timer-driven refill
/// adds a fixed amount per tick and so loses tokens whenever a tick is late (a busy machine, which
/// is exactly when throttling matters); here a <see cref="TimeProvider"/> timer asks the bucket to
/// refill and the bucket adds tokens for the time that actually passed.
/// </summary>
internal sealed class TokenBucket : IDisposable
{
    private static readonly TimeSpan MinimumTick = TimeSpan.FromMilliseconds(10);
    private readonly ITimer _timer;

    public TokenBucket(int ratePerSecond, int burst, int queueLimit, TimeProvider timeProvider)
    {
        // At most ~100 refills a second; tokens per refill stay whole, the rate stays exact.
        var tokensPerPeriod = Math.Max(1, ratePerSecond / 100);
        var period = TimeSpan.FromTicks(Math.Max(1, TimeSpan.TicksPerSecond * tokensPerPeriod / ratePerSecond));
        Limiter = new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            TokenLimit = burst,
            TokensPerPeriod = tokensPerPeriod,
            ReplenishmentPeriod = period,
            AutoReplenishment = false,
            QueueLimit = queueLimit,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        });
        var tick = period < MinimumTick ? MinimumTick : period;
        _timer = timeProvider.CreateTimer(static state => ((TokenBucketRateLimiter)state!).TryReplenish(), Limiter, tick, tick);
    }

    public TokenBucketRateLimiter Limiter { get; }

    public void Dispose()
    {
        _timer.Dispose();
        Limiter.Dispose();
    }
}
