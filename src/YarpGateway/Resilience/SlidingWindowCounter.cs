namespace YarpGateway.Resilience;

/// <summary>
/// Two counts (all events and the ones that matter: requests and retries, requests and failures)
/// over a sliding window of one-second buckets. Counting is an interlocked increment; a bucket is
/// reset under its own lock only when it turns over, once a second.
/// </summary>
internal sealed class SlidingWindowCounter(TimeProvider timeProvider, TimeSpan window)
{
    private readonly Bucket[] _buckets = Enumerable.Range(0, Math.Max(1, (int)Math.Ceiling(window.TotalSeconds))).Select(_ => new Bucket()).ToArray();

    /// <summary>The window in whole seconds.</summary>
    public int Seconds => _buckets.Length;

    public void AddTotal() => Interlocked.Increment(ref Current().Total);

    public void AddMarked() => Interlocked.Increment(ref Current().Marked);

    public (long Total, long Marked) Sum()
    {
        var now = Second();
        long total = 0, marked = 0;
        foreach (var bucket in _buckets)
        {
            if (Volatile.Read(ref bucket.Second) > now - _buckets.Length)
            {
                total += Volatile.Read(ref bucket.Total);
                marked += Volatile.Read(ref bucket.Marked);
            }
        }

        return (total, marked);
    }

    public void Clear()
    {
        foreach (var bucket in _buckets)
        {
            lock (bucket)
            {
                bucket.Total = 0;
                bucket.Marked = 0;
            }
        }
    }

    private long Second() => timeProvider.GetTimestamp() / timeProvider.TimestampFrequency;

    private Bucket Current()
    {
        var now = Second();
        var bucket = _buckets[now % _buckets.Length];
        if (Volatile.Read(ref bucket.Second) != now)
        {
            lock (bucket)
            {
                if (bucket.Second != now)
                {
                    bucket.Total = 0;
                    bucket.Marked = 0;
                    Volatile.Write(ref bucket.Second, now);
                }
            }
        }

        return bucket;
    }

    private sealed class Bucket
    {
        public long Second = long.MinValue;
        public long Total;
        public long Marked;
    }
}
