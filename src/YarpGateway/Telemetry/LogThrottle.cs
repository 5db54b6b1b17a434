using System.Collections.Concurrent;

namespace YarpGateway.Telemetry;

/// <summary>
/// At most one log line per kind per second: during an outage every request fails the same way,
/// and the log should say so once a second with a count, not a thousand times. The count of the
/// lines held back goes with the next line of that kind; given the owner's logger, a burst that has
/// no next line (fifty WebSockets of one dead backend, closed in the same instant) gets its count
/// written once the kind has been quiet for <see cref="QuietPeriod"/> (<c>LogSuppressed</c>), so the
/// log never understates what happened. A kind that keeps happening keeps carrying its count itself.
/// </summary>
internal sealed partial class LogThrottle
{
    internal static readonly TimeSpan Window = TimeSpan.FromSeconds(1);

    /// <summary>How long a kind with a count held back must go without an event before the count is written on its own.</summary>
    internal static readonly TimeSpan QuietPeriod = TimeSpan.FromSeconds(2);

    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly TimeProvider _timeProvider;
    private readonly ILogger? _logger;
    private readonly ITimer? _flush; // one-shot, armed only while a count is held back
    private int _flushArmed;

    public LogThrottle(TimeProvider timeProvider, ILogger? logger = null)
    {
        _timeProvider = timeProvider;
        _logger = logger;
        if (logger is not null)
        {
            _flush = timeProvider.CreateTimer(static state => ((LogThrottle)state!).Flush(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>Whether a line of <paramref name="kind"/> may be written now; <paramref name="level"/> is the line's, for the count written later.</summary>
    public bool ShouldLog(string kind, out long suppressed, LogLevel level = LogLevel.Information)
    {
        var entry = _entries.GetOrAdd(kind, static _ => new Entry());
        entry.Level = level;
        var now = _timeProvider.GetTimestamp();
        Volatile.Write(ref entry.LastSeen, now);
        var last = Volatile.Read(ref entry.LastLogged);
        if ((last != 0 && _timeProvider.GetElapsedTime(last, now) < Window)
            || Interlocked.CompareExchange(ref entry.LastLogged, now, last) != last)
        {
            Interlocked.Increment(ref entry.Suppressed);
            ArmFlush(QuietPeriod);
            suppressed = 0;
            return false;
        }

        suppressed = Interlocked.Exchange(ref entry.Suppressed, 0);
        return true;
    }

    private void ArmFlush(TimeSpan dueIn)
    {
        if (_flush is not null && Interlocked.CompareExchange(ref _flushArmed, 1, 0) == 0)
        {
            _flush.Change(dueIn, Timeout.InfiniteTimeSpan);
        }
    }

    // Writes the counts held back by kinds that have had no event for the quiet period (no line will
    // come to carry them); a kind not quiet yet is looked at again when it would be.
    internal void Flush()
    {
        Volatile.Write(ref _flushArmed, 0);
        var now = _timeProvider.GetTimestamp();
        var next = TimeSpan.MaxValue;
        foreach (var (kind, entry) in _entries)
        {
            if (Volatile.Read(ref entry.Suppressed) == 0)
            {
                continue;
            }

            var quiet = _timeProvider.GetElapsedTime(Volatile.Read(ref entry.LastSeen), now);
            if (quiet < QuietPeriod)
            {
                next = TimeSpan.FromTicks(Math.Min(next.Ticks, (QuietPeriod - quiet).Ticks));
                continue;
            }

            if (Interlocked.Exchange(ref entry.Suppressed, 0) is var count and > 0)
            {
                Volatile.Write(ref entry.LastLogged, now); // the summary is the kind's line for this second
                Log.Suppressed(_logger!, entry.Level, count, kind, QuietPeriod.TotalSeconds);
            }
        }

        if (next != TimeSpan.MaxValue)
        {
            ArmFlush(next);
        }
    }

    private sealed class Entry
    {
        public long LastLogged;
        public long LastSeen;
        public long Suppressed;
        public LogLevel Level;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 900, EventName = "LogSuppressed", Message = "{Count} more '{Kind}' events were not logged after the last line about them; none in the {Seconds} s since.")]
        public static partial void Suppressed(ILogger logger, LogLevel level, long count, string kind, double seconds);
    }
}
