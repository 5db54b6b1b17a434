namespace YarpGateway.Health;

/// <summary>
/// How many active-health lines <see cref="ActiveHealthLog"/> writes one by one: at most <see cref="LinesPerSecond"/> of
/// each kind a second, the rest counted and written as one line when the second ends (<c>ActiveHealthChangesHeldBack</c>),
/// with how many clusters and the first of them. A backend many clusters share going down (or the network to it) turns
/// every destination unhealthy within one probe interval: tried with 1,250 clusters of 3 destinations each, one
/// backend killed, and the log got 5,000 warnings in seconds (a line per destination and one per cluster), at the moment
/// an operator reads it. Now it gets the first ten of each kind and a count, each second.
/// </summary>
internal sealed partial class ActiveHealthLogBudget : IDisposable
{
    /// <summary>Lines of each kind written one by one in a second.</summary>
    internal const int LinesPerSecond = 10;

    /// <summary>Clusters a held-back count names.</summary>
    internal const int ClustersNamed = 5;

    private static readonly TimeSpan Window = TimeSpan.FromSeconds(1);

    private readonly TimeProvider _timeProvider;
    private readonly ILogger<ActiveHealthLog> _logger;
    private readonly ITimer _flush;
    private readonly Lock _gate = new();
    private readonly Count[] _counts = [new(HealthChange.Unhealthy), new(HealthChange.Healthy), new(HealthChange.AllFailing), new(HealthChange.AllFailingNone)];
    private long _windowStart;
    private bool _flushArmed;

    public ActiveHealthLogBudget(TimeProvider timeProvider, ILogger<ActiveHealthLog> logger)
    {
        _timeProvider = timeProvider;
        _logger = logger;
        _flush = timeProvider.CreateTimer(static state => ((ActiveHealthLogBudget)state!).Flush(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Whether a line of <paramref name="change"/> about <paramref name="clusterId"/> is written now; if not, it is counted.</summary>
    public bool TryTake(HealthChange change, string clusterId)
    {
        lock (_gate)
        {
            var now = _timeProvider.GetTimestamp();
            if (_windowStart == 0 || _timeProvider.GetElapsedTime(_windowStart, now) >= Window)
            {
                WriteHeldBack(); // a second that ended before its timer fired
                _windowStart = now;
            }

            var count = _counts[(int)change];
            if (count.Written < LinesPerSecond)
            {
                count.Written++;
                return true;
            }

            count.Held++;
            count.Clusters.Add(clusterId);
            if (count.Named.Count < ClustersNamed && !count.Named.Contains(clusterId))
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

    // Under the lock: the counts held back in the window that ends, each as one line; then a new window's counts.
    private void WriteHeldBack()
    {
        foreach (var count in _counts)
        {
            if (count.Held > 0)
            {
                var named = string.Join(", ", count.Named) + (count.Clusters.Count > count.Named.Count ? ", ..." : string.Empty);
                var where = count.Change is HealthChange.Unhealthy or HealthChange.Healthy ? $", in {count.Clusters.Count} cluster(s) ({named})" : $" ({named})";
                var (level, what) = count.Change switch
                {
                    HealthChange.Unhealthy => (LogLevel.Warning, "destinations failed their active health checks"),
                    HealthChange.Healthy => (LogLevel.Information, "destinations passed their active health checks again"),
                    HealthChange.AllFailing => (LogLevel.Warning, "clusters had every destination fail its active health checks (their requests go to all of them anyway)"),
                    _ => (LogLevel.Error, "clusters had every destination fail its active health checks, and their AvailableDestinationsPolicy left none (their requests get 503)"),
                };
                Log.HeldBack(_logger, level, count.Held, what, where, LinesPerSecond);
            }

            count.Reset();
        }
    }

    public void Dispose() => _flush.Dispose();

    /// <summary>The kinds of line counted apart.</summary>
    internal enum HealthChange
    {
        Unhealthy,
        Healthy,
        AllFailing,
        AllFailingNone,
    }

    private sealed class Count(HealthChange change)
    {
        public HealthChange Change { get; } = change;

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
        [LoggerMessage(EventId = 5, Message = "{Count} more {What} in the last second{Where}, not logged one by one (at most {PerSecond} a second of each kind are). gateway_cluster_available_destinations and /status show every cluster.", EventName = "ActiveHealthChangesHeldBack")]
        public static partial void HeldBack(ILogger logger, LogLevel level, int count, string what, string where, int perSecond);
    }
}
