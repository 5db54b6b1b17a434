using System.IO.Hashing;
using System.Text;
using System.Threading.RateLimiting;
using Yarp.ReverseProxy.Model;

namespace YarpGateway.RateLimiting;

/// <summary>
/// One configured policy: the partition a request belongs to, and the limiter each partition gets.
/// The number of live partitions is bounded by <see cref="RateLimitPolicySettings.MaxPartitions"/>:
/// once reached, a request whose key has no partition yet goes to one shared overflow partition (with
/// the same limits), so a flood of distinct addresses or header values costs one limiter, not one each.
/// Keys longer than 64 characters are kept as a 128-bit hash. A reload's new limits (<see cref="Apply"/>) go to new
/// partitions: each key starts afresh under them, and the previous limiters go once idle, as any partition does.
/// </summary>
internal sealed class PartitionedPolicy
{
    public const string OverflowKey = "\0overflow";
    private const int MaxKeyLength = 64;

    private readonly PartitionKind _kind;
    // Limiters alive per key: the middleware may create a key's new limiter before it disposes the old one.
    private readonly CountsByKey _live = new();
    private readonly Action<PartitionedPolicy>? _overflowing;
    private readonly Lock _applying = new();
    private volatile Limits _limits;
    private int _count;
    private long _overflowed;

    /// <param name="overflowing">Called when a request goes to the overflow partition.</param>
    public PartitionedPolicy(string name, RateLimitPolicySettings settings, Action<PartitionedPolicy>? overflowing = null)
    {
        _overflowing = overflowing;
        Name = name;
        if (!PartitionKind.TryParse(settings.PartitionBy, out _kind))
        {
            throw new ArgumentException($"PartitionBy '{settings.PartitionBy}' is not valid.", nameof(settings));
        }

        _limits = new Limits(this, settings, generation: 0);
    }

    public string Name { get; }

    public PartitionKind Kind => _kind;

    public int MaxPartitions => _limits.Settings.MaxPartitions;

    /// <summary>The limits in force for new requests: those the policy started with, or the last <see cref="Apply"/>'s.</summary>
    public RateLimitPolicySettings Settings => _limits.Settings;

    /// <summary>Partitions alive now (the overflow partition included).</summary>
    public int Partitions => Volatile.Read(ref _count);

    /// <summary>Requests sent to the overflow partition since the last call (the first one's included).</summary>
    public long TakeOverflowed() => Interlocked.Exchange(ref _overflowed, 0);

    /// <summary>
    /// Applies a reload's limits to new requests (the partitioning stays as it started). No change when they are the same
    /// limits, so an edit elsewhere in the section does not restart every key's count.
    /// </summary>
    /// <returns>Whether the limits changed.</returns>
    public bool Apply(RateLimitPolicySettings settings)
    {
        lock (_applying)
        {
            var current = _limits;
            if (current.Settings.SameLimitsAs(settings))
            {
                return false;
            }

            _limits = new Limits(this, settings, current.Generation + 1);
            return true;
        }
    }

    public RateLimitPartition<string> Partition(HttpContext context)
    {
        var limits = _limits;
        var key = limits.KeyFor(KeyOf(context));
        if (Volatile.Read(ref _count) >= limits.Settings.MaxPartitions && !_live.Contains(key))
        {
            Interlocked.Increment(ref _overflowed);
            _overflowing?.Invoke(this);
            key = limits.KeyFor(OverflowKey);
        }

        return new RateLimitPartition<string>(key, limits.Factory);
    }

    internal string KeyOf(HttpContext context)
    {
        var key = _kind.Source switch
        {
            PartitionSource.ClientIp => Endpoints.ClientEndPoint.Key(context.Connection.RemoteIpAddress),
            PartitionSource.Header => context.Request.Headers[_kind.Name].ToString(),
            PartitionSource.Claim => context.User.FindFirst(_kind.Name)?.Value ?? string.Empty,
            _ => context.GetEndpoint()?.Metadata.GetMetadata<RouteModel>()?.Config.RouteId ?? string.Empty,
        };
        return key.Length <= MaxKeyLength ? key : "#" + Convert.ToHexString(XxHash128.Hash(Encoding.UTF8.GetBytes(key)));
    }

    private CountedLimiter Create(string key, RateLimitPolicySettings settings)
    {
        if (_live.TryAdd(key, int.MaxValue, out var first) && first)
        {
            Interlocked.Increment(ref _count);
        }

        return new CountedLimiter(CreateLimiter(settings), () => Release(key));
    }

    private void Release(string key)
    {
        if (_live.Remove(key))
        {
            Interlocked.Decrement(ref _count);
        }
    }

    internal static RateLimiter CreateLimiter(RateLimitPolicySettings settings) => settings.Kind switch
    {
        RateLimitKind.FixedWindow => new FixedWindowRateLimiter(new FixedWindowRateLimiterOptions
        {
            PermitLimit = settings.PermitLimit,
            Window = settings.Window,
            QueueLimit = settings.QueueLimit,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            AutoReplenishment = false,
        }),
        RateLimitKind.SlidingWindow => new SlidingWindowRateLimiter(new SlidingWindowRateLimiterOptions
        {
            PermitLimit = settings.PermitLimit,
            Window = settings.Window,
            SegmentsPerWindow = settings.SegmentsPerWindow,
            QueueLimit = settings.QueueLimit,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            AutoReplenishment = false,
        }),
        RateLimitKind.Concurrency => new ConcurrencyLimiter(new ConcurrencyLimiterOptions
        {
            PermitLimit = settings.PermitLimit,
            QueueLimit = settings.QueueLimit,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        }),
        _ => new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            TokenLimit = settings.PermitLimit,
            TokensPerPeriod = settings.TokensPerPeriod ?? settings.PermitLimit,
            ReplenishmentPeriod = settings.ReplenishmentPeriod,
            QueueLimit = settings.QueueLimit,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            AutoReplenishment = false,
        }),
    };

    /// <summary>
    /// One set of limits and the partitions made under it. After a reload a key's partition is a new one (the generation
    /// before the key), so that a client already being limited gets the new limits at its next request, not once its old
    /// limiter idles out.
    /// </summary>
    private sealed class Limits
    {
        private readonly string _prefix;

        public Limits(PartitionedPolicy policy, RateLimitPolicySettings settings, int generation)
        {
            Settings = settings;
            Generation = generation;
            _prefix = generation == 0 ? string.Empty : generation.ToString(System.Globalization.CultureInfo.InvariantCulture) + "\0";
            Factory = key => policy.Create(key, settings);
        }

        public RateLimitPolicySettings Settings { get; }

        public int Generation { get; }

        public Func<string, RateLimiter> Factory { get; }

        public string KeyFor(string key) => _prefix.Length == 0 ? key : _prefix + key;
    }
}
