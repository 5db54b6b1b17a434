namespace YarpGateway.RateLimiting;

/// <summary>
/// <c>Gateway:RateLimiting</c>: the rate-limit policies a route names in <c>RateLimiterPolicy</c>,
/// built on System.Threading.RateLimiting and ASP.NET Core's rate-limiting middleware. The limits reload; which
/// policies exist and their <see cref="RateLimitPolicySettings.PartitionBy"/> are read at start-up (<see cref="RateLimitPolicyKeys"/>).
/// </summary>
internal sealed class GatewayRateLimitingOptions
{
    public const string SectionName = "Gateway:RateLimiting";

    /// <summary>Policies by name (case-insensitive). Default: none, and then no rate-limiting middleware runs.</summary>
    public Dictionary<string, RateLimitPolicySettings> Policies { get; set; } = new(StringComparer.OrdinalIgnoreCase);
}

/// <summary>The limiter kinds of System.Threading.RateLimiting.</summary>
internal enum RateLimitKind
{
    TokenBucket,
    FixedWindow,
    SlidingWindow,
    Concurrency,
}

/// <summary>One policy: a limiter of <see cref="Kind"/> per partition.</summary>
internal sealed class RateLimitPolicySettings
{
    /// <summary>The limiter. Default <see cref="RateLimitKind.TokenBucket"/>.</summary>
    public RateLimitKind Kind { get; set; } = RateLimitKind.TokenBucket;

    /// <summary>
    /// Requests allowed per <see cref="Window"/> (windows), the bucket's size (token bucket: the burst),
    /// or requests at once (concurrency). Required, at least 1.
    /// </summary>
    public int PermitLimit { get; set; }

    /// <summary>The window of FixedWindow and SlidingWindow. Default 1 s.</summary>
    public TimeSpan Window { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>SlidingWindow's segments per window. Default 4.</summary>
    public int SegmentsPerWindow { get; set; } = 4;

    /// <summary>TokenBucket: tokens added each <see cref="ReplenishmentPeriod"/>. Default: <see cref="PermitLimit"/>.</summary>
    public int? TokensPerPeriod { get; set; }

    /// <summary>TokenBucket: how often tokens are added. Default 1 s.</summary>
    public TimeSpan ReplenishmentPeriod { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Requests that wait (oldest first) when the limit is reached, instead of a 429. Default 0.</summary>
    public int QueueLimit { get; set; }

    /// <summary>
    /// What a partition is: <c>ClientIp</c> (the default; an IPv6 client by its /64), <c>Header:&lt;name&gt;</c>,
    /// <c>Claim:&lt;type&gt;</c> (routes with an AuthorizationPolicy) or <c>Route</c> (one limit for the route).
    /// Requests without the header or claim share one partition.
    /// </summary>
    public string PartitionBy { get; set; } = "ClientIp";

    /// <summary>
    /// Partitions kept at once (a partition goes 10 s after its last request). Past this, new partition
    /// keys share one overflow partition, so a flood of distinct keys cannot grow memory. Default 100,000
    /// (about 30 MB at most).
    /// </summary>
    public int MaxPartitions { get; set; } = 100_000;

    /// <summary>Whether <paramref name="other"/> sets the same limits (all but <see cref="PartitionBy"/>).</summary>
    public bool SameLimitsAs(RateLimitPolicySettings other)
        => Kind == other.Kind && PermitLimit == other.PermitLimit && Window == other.Window && SegmentsPerWindow == other.SegmentsPerWindow
            && TokensPerPeriod == other.TokensPerPeriod && ReplenishmentPeriod == other.ReplenishmentPeriod && QueueLimit == other.QueueLimit
            && MaxPartitions == other.MaxPartitions;
}
