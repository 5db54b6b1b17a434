using System.Threading.RateLimiting;

namespace YarpGateway.RateLimiting;

/// <summary>
/// One partition's limiter, reporting when the rate-limiting middleware lets it go (it disposes a
/// partition 10 s after its last request), so that <see cref="PartitionedPolicy"/> knows how many are
/// alive. Replenished by the middleware's own timer, as its partitions always are.
/// </summary>
internal sealed class CountedLimiter(RateLimiter inner, Action released) : ReplenishingRateLimiter
{
    private int _disposed;

    public override bool IsAutoReplenishing => inner is ReplenishingRateLimiter { IsAutoReplenishing: true };

    public override TimeSpan ReplenishmentPeriod => inner is ReplenishingRateLimiter replenishing ? replenishing.ReplenishmentPeriod : TimeSpan.Zero;

    public override TimeSpan? IdleDuration => inner.IdleDuration;

    public override bool TryReplenish() => inner is ReplenishingRateLimiter replenishing && replenishing.TryReplenish();

    public override RateLimiterStatistics? GetStatistics() => inner.GetStatistics();

    protected override RateLimitLease AttemptAcquireCore(int permitCount) => inner.AttemptAcquire(permitCount);

    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
        => inner.AcquireAsync(permitCount, cancellationToken);

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            inner.Dispose();
            released();
        }

        base.Dispose(disposing);
    }

    protected override async ValueTask DisposeAsyncCore()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await inner.DisposeAsync().ConfigureAwait(false);
            released();
        }

        await base.DisposeAsyncCore().ConfigureAwait(false);
    }
}
