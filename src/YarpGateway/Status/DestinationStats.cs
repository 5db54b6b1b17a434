using System.Collections.Concurrent;
using Yarp.ReverseProxy.Model;

namespace YarpGateway.Status;

/// <summary>
/// Requests, errors and latency per destination for the status page and the per-destination metrics,
/// recorded by <see cref="Telemetry.RequestMetrics"/> with each request's duration, not by a listener on
/// the duration histogram (which was a second subscriber to every recording and walked every request's
/// tags). Per destination: totals since start, and the last minute as 60 one-second slots, each
/// with a fixed set of latency buckets (about 4.8 KB). Memory is bounded by the number of destinations
/// that exist: a destination's figures go when YARP removes it, and once a minute the figures of
/// destinations that no longer exist are let go again (a request under way when its destination was
/// removed records after it; per-pod destinations from DNS come and go with every rolling update, and
/// were kept for the process's life). A destination whose address is edited starts afresh: its figures
/// were another backend's (an operator who corrects a typo should not read the old address's errors
/// for a minute, nor in the totals for the process's life). Nothing is allocated per request once a
/// destination has been seen.
/// </summary>
internal sealed class DestinationStats : IClusterChangeListener, IDisposable
{
    /// <summary>How often the figures of destinations that no longer exist are let go.</summary>
    internal static readonly TimeSpan PruneInterval = TimeSpan.FromMinutes(1);

    /// <summary>Upper bounds of the latency buckets, in seconds (the last one catches the rest).</summary>
    internal static readonly double[] Bounds = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, double.MaxValue];

    private readonly ConcurrentDictionary<(string Cluster, string Destination), Stats> _byDestination = new();

    // Each cluster's destinations and their addresses as YARP last announced them (replaced whole at each change).
    private readonly ConcurrentDictionary<string, Dictionary<string, string>> _known = new(StringComparer.Ordinal);
    private readonly TimeProvider _timeProvider;
    private readonly ITimer _prune;

    public DestinationStats(TimeProvider timeProvider)
    {
        _timeProvider = timeProvider;
        _prune = timeProvider.CreateTimer(static state => ((DestinationStats)state!).Prune(), this, PruneInterval, PruneInterval);
    }

    public Stats? For(string cluster, string destination) => _byDestination.TryGetValue((cluster, destination), out var stats) ? stats : null;

    /// <summary>Records a finished request that <paramref name="destination"/> of <paramref name="cluster"/> answered last; <paramref name="error"/>: a 5xx.</summary>
    public void Record(string cluster, string destination, double seconds, bool error)
    {
        _byDestination.GetOrAdd((cluster, destination), static _ => new Stats()).Record(_timeProvider.GetUtcNow().ToUnixTimeSeconds(), seconds, error);
    }

    public long Now => _timeProvider.GetUtcNow().ToUnixTimeSeconds();

    /// <summary>Destinations with figures kept.</summary>
    internal int Count => _byDestination.Count;

    /// <summary>Lets go of the figures of every destination that does not exist now.</summary>
    private void Prune()
    {
        foreach (var key in _byDestination.Keys)
        {
            if (!_known.TryGetValue(key.Cluster, out var destinations) || !destinations.ContainsKey(key.Destination))
            {
                _byDestination.TryRemove(key, out _);
            }
        }
    }

    public void OnClusterAdded(ClusterState cluster) => Update(cluster.ClusterId, Addresses(cluster));

    public void OnClusterChanged(ClusterState cluster) => Update(cluster.ClusterId, Addresses(cluster));

    public void OnClusterRemoved(ClusterState cluster) => Update(cluster.ClusterId, now: null);

    // YARP announces one change at a time. Lets go of the figures of each destination that is gone, or whose address
    // is no longer the one its figures were recorded for.
    private void Update(string cluster, Dictionary<string, string>? now)
    {
        Dictionary<string, string>? before;
        if (now is null)
        {
            _known.TryRemove(cluster, out before);
        }
        else
        {
            _known.TryGetValue(cluster, out before);
            _known[cluster] = now;
        }

        foreach (var (destination, address) in before ?? [])
        {
            if (now is null || !now.TryGetValue(destination, out var current) || !string.Equals(current, address, StringComparison.Ordinal))
            {
                _byDestination.TryRemove((cluster, destination), out _);
            }
        }
    }

    private static Dictionary<string, string> Addresses(ClusterState cluster)
    {
        var addresses = new Dictionary<string, string>(cluster.Destinations.Count, StringComparer.Ordinal);
        foreach (var (id, destination) in cluster.Destinations)
        {
            addresses[id] = destination.Model.Config.Address;
        }

        return addresses;
    }

    public void Dispose() => _prune.Dispose();

    /// <summary>One destination's figures.</summary>
    internal sealed class Stats
    {
        private readonly Lock _lock = new();
        private readonly long[] _second = new long[60];
        // Counts within one second fit in 32 bits, and halve what each destination holds (9.5 to 4.8 KB; with 3,000 clusters of
        // two destinations, 43 MB of the heap).
        private readonly int[] _count = new int[60];
        private readonly int[] _errors = new int[60];
        private readonly int[,] _buckets = new int[60, Bounds.Length];
        private long _requests;
        private long _errorsTotal;

        public long Requests => Interlocked.Read(ref _requests);

        public long Errors => Interlocked.Read(ref _errorsTotal);

        public void Record(long second, double seconds, bool error)
        {
            Interlocked.Increment(ref _requests);
            if (error)
            {
                Interlocked.Increment(ref _errorsTotal);
            }

            var bucket = 0;
            while (seconds > Bounds[bucket])
            {
                bucket++;
            }

            var slot = (int)(second % 60);
            lock (_lock)
            {
                if (_second[slot] != second)
                {
                    _second[slot] = second;
                    _count[slot] = 0;
                    _errors[slot] = 0;
                    for (var i = 0; i < Bounds.Length; i++)
                    {
                        _buckets[slot, i] = 0;
                    }
                }

                _count[slot]++;
                _buckets[slot, bucket]++;
                if (error)
                {
                    _errors[slot]++;
                }
            }
        }

        /// <summary>The 60 seconds up to <paramref name="now"/>: requests per second, p50 and p99 in milliseconds (upper bucket bounds), and requests in each second, oldest first.</summary>
        public (double RequestsPerSecond, double? P50Ms, double? P99Ms, long[] History) LastMinute(long now)
        {
            var history = new long[60];
            Span<long> buckets = stackalloc long[Bounds.Length];
            var total = Sum(now, buckets, history);
            return (total / 60.0, Percentile(buckets, total, 0.5), Percentile(buckets, total, 0.99), history);
        }

        /// <summary>The last minute's p99 in milliseconds (an upper bucket bound), or null without requests; for each scrape, so allocating nothing.</summary>
        public double? LastMinuteP99(long now)
        {
            Span<long> buckets = stackalloc long[Bounds.Length];
            return Percentile(buckets, Sum(now, buckets, history: default), 0.99);
        }

        /// <summary>Adds the 60 seconds up to <paramref name="now"/> into <paramref name="buckets"/> (and each second's count into <paramref name="history"/>, oldest first, when given); returns their requests.</summary>
        private long Sum(long now, Span<long> buckets, Span<long> history)
        {
            long total = 0;
            lock (_lock)
            {
                for (var ago = 0; ago < 60; ago++)
                {
                    var second = now - ago;
                    var slot = (int)(second % 60);
                    if (_second[slot] != second)
                    {
                        continue;
                    }

                    if (!history.IsEmpty)
                    {
                        history[59 - ago] = _count[slot];
                    }

                    total += _count[slot];
                    for (var i = 0; i < Bounds.Length; i++)
                    {
                        buckets[i] += _buckets[slot, i];
                    }
                }
            }

            return total;
        }

        private static double? Percentile(ReadOnlySpan<long> buckets, long total, double percentile)
        {
            if (total == 0)
            {
                return null;
            }

            var rank = (long)Math.Ceiling(percentile * total);
            long seen = 0;
            for (var i = 0; i < buckets.Length; i++)
            {
                seen += buckets[i];
                if (seen >= rank)
                {
                    return Bounds[i] == double.MaxValue ? Bounds[^2] * 1000 : Bounds[i] * 1000;
                }
            }

            return null;
        }
    }
}
