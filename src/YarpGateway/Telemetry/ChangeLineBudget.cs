namespace YarpGateway.Telemetry;

/// <summary>
/// How many lines about destinations and clusters changing state a feature writes one by one: at most
/// <see cref="LinesPerSecond"/> of each kind a second, the rest counted and written as one line when the second ends
/// (<c>ChangesHeldBack</c>, under the feature's own category), with how many clusters and the first of them. A backend many
/// clusters share going down (or the network to it) changes them all at once: tried with 1,250 clusters of 3 destinations
/// each and one backend killed, active health checks logged 5,000 warnings in seconds (a line per destination and one per
/// cluster), at the moment an operator reads the log. Unlike <see cref="LogThrottle"/>, which keeps one line a second of a
/// kind, this keeps the first ten: a change of one destination is the news, and ten say which.
/// </summary>
internal sealed partial class ChangeLineBudget : IDisposable
{
    /// <summary>Lines of each kind written one by one in a second.</summary>
    internal const int LinesPerSecond = 10;

    /// <summary>Clusters a held-back count names.</summary>
    internal const int ClustersNamed = 5;

    private static readonly TimeSpan Window = TimeSpan.FromSeconds(1);

    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly ITimer _flush;
    private readonly Lock _gate = new();
    private readonly Count[] _counts;
    private long _windowStart;
    private bool _flushArmed;

    /// <param name="timeProvider">The clock.</param>
    /// <param name="logger">The feature's own, under whose category the counts are written.</param>
    /// <param name="kinds">What is counted apart: <see cref="TryTake"/> takes one of them.</param>
    public ChangeLineBudget(TimeProvider timeProvider, ILogger logger, params Kind[] kinds)
    {
        _timeProvider = timeProvider;
        _logger = logger;
        _counts = [.. kinds.Select(kind => new Count(kind))];
        _flush = timeProvider.CreateTimer(static state => ((ChangeLineBudget)state!).Flush(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Whether a line of <paramref name="kind"/> (one given when this was made) about <paramref name="clusterId"/> is written now; if not, it is counted.</summary>
    public bool TryTake(Kind kind, string clusterId)
    {
        lock (_gate)
        {
            var now = _timeProvider.GetTimestamp();
            if (_windowStart == 0 || _timeProvider.GetElapsedTime(_windowStart, now) >= Window)
            {
                WriteHeldBack(); // a second that ended before its timer fired
                _windowStart = now;
            }

            var count = CountOf(kind);
            if (count.Written < LinesPerSecond)
            {
                count.Written++;
                return true;
            }

            count.Held++;
            if (count.Clusters.Add(clusterId) && count.Named.Count < ClustersNamed)
            {
                count.Named.Add(clusterId);
            }

            if (!_flushArmed)
            {
                _flushArmed = true;
                _flush.Change(Window - _timeProvider.GetElapsedTime(_windowStart, now), Timeout.InfiniteTimeSpan);
            }

            return false;
        }
    }

    private Count CountOf(Kind kind)
    {
        foreach (var count in _counts)
        {
            if (ReferenceEquals(count.Kind, kind))
            {
                return count;
            }
        }

        throw new ArgumentException($"'{kind.What}' is not one of this budget's kinds.", nameof(kind));
    }

    private void Flush()
    {
        lock (_gate)
        {
            _flushArmed = false;
            var elapsed = _windowStart == 0 ? Window : _timeProvider.GetElapsedTime(_windowStart);
            if (elapsed < Window)
            {
                // The second this timer was armed for was ended by a line since, which wrote its counts; this is a later one.
                if (Array.Exists(_counts, count => count.Held > 0))
                {
                    _flushArmed = true;
                    _flush.Change(Window - elapsed, Timeout.InfiniteTimeSpan);
                }

                return;
            }

            WriteHeldBack();
            _windowStart = 0;
        }
    }

    // Under the lock: the counts held back in the second that ends, each as one line; then a new second's counts.
    private void WriteHeldBack()
    {
        foreach (var count in _counts)
        {
            if (count.Held > 0)
            {
                var named = string.Join(", ", count.Named) + (count.Clusters.Count > count.Named.Count ? ", ..." : string.Empty);
                var where = count.Kind.OfDestinations ? $", in {count.Clusters.Count} cluster(s) ({named})" : $" ({named})";
                Log.HeldBack(_logger, count.Kind.Level, count.Held, count.Kind.What, where, LinesPerSecond);
            }

            count.Reset();
        }
    }

    public void Dispose() => _flush.Dispose();

    /// <summary>A kind of line counted apart: its level, what its count is of ("destinations failed their active health checks"), and whether they are destinations (the count names their clusters) or clusters.</summary>
    internal sealed class Kind(LogLevel level, string what, bool ofDestinations)
    {
        public LogLevel Level { get; } = level;

        public string What { get; } = what;

        public bool OfDestinations { get; } = ofDestinations;
    }

    private sealed class Count(Kind kind)
    {
        public Kind Kind { get; } = kind;

        public HashSet<string> Clusters { get; } = new(StringComparer.Ordinal);

        public List<string> Named { get; } = [];

        public int Written { get; set; }

        public int Held { get; set; }

        public void Reset()
        {
            Written = 0;
            Held = 0;
            Clusters.Clear();
            Named.Clear();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 901, Message = "{Count} more {What} in the last second{Where}, not logged one by one (at most {PerSecond} a second of each kind are). gateway_cluster_available_destinations and /status show every cluster.", EventName = "ChangesHeldBack")]
        public static partial void HeldBack(ILogger logger, LogLevel level, int count, string what, string where, int perSecond);
    }
}
