using System.Threading.RateLimiting;

namespace YarpGateway.Admission;

/// <summary>Builds a token bucket that refills smoothly at a whole-number rate per second.</summary>
internal static class TokenBuckets
{
    /// <summary>
    /// Refills in small steps (1 token per 1/rate s up to 1000/s; beyond that ceil(rate/1000) tokens
    /// per step of about 1 ms) so that a storm is admitted evenly, not in once-a-second lumps.
    /// </summary>
    public static TokenBucketRateLimiter Create(int ratePerSecond, int burst, int queueLimit)
    {
        var tokensPerPeriod = Math.Max(1, (ratePerSecond + 999) / 1000);
        var period = TimeSpan.FromTicks(Math.Max(1, TimeSpan.TicksPerSecond * tokensPerPeriod / ratePerSecond));
        return new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            TokenLimit = burst,
            TokensPerPeriod = tokensPerPeriod,
            ReplenishmentPeriod = period,
            AutoReplenishment = true,
            QueueLimit = queueLimit,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        });
    }
}
