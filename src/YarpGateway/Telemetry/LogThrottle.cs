using System.Collections.Concurrent;

namespace YarpGateway.Telemetry;

/// <summary>
/// At most one log line per kind per second: during an outage every request fails the same way,
/// and the log should say so once a second with a count, not a thousand times.
/// </summary>
internal sealed class LogThrottle(TimeProvider timeProvider)
{
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    public bool ShouldLog(string kind, out long suppressed)
    {
        var entry = _entries.GetOrAdd(kind, static _ => new Entry());
        var now = timeProvider.GetTimestamp();
        var last = Volatile.Read(ref entry.LastLogged);
        if (last != 0 && timeProvider.GetElapsedTime(last, now) < TimeSpan.FromSeconds(1))
        {
            Interlocked.Increment(ref entry.Suppressed);
            suppressed = 0;
            return false;
        }

        if (Interlocked.CompareExchange(ref entry.LastLogged, now, last) != last)
        {
            Interlocked.Increment(ref entry.Suppressed);
            suppressed = 0;
            return false;
        }

        suppressed = Interlocked.Exchange(ref entry.Suppressed, 0);
        return true;
    }

    private sealed class Entry
    {
        public long LastLogged;
        public long Suppressed;
    }
}
