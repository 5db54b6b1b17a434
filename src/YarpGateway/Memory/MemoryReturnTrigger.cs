namespace YarpGateway.Memory;

/// <summary>
/// Decides when many clients have left for good: open connections at most half of their peak since
/// the last decision, at least <see cref="MemoryOptions.MinConnectionDrop"/> fewer, for
/// <see cref="MemoryOptions.SettleTime"/> without a break, and at least
/// <see cref="MemoryOptions.MinInterval"/> after the last time it said so. Saying so starts a new
/// peak from the connections open then, so one drop is decided once. Not thread-safe: one sampler
/// calls it.
/// </summary>
internal sealed class MemoryReturnTrigger
{
    private long _peak;
    private TimeSpan? _lowSince;
    private TimeSpan? _lastDrop;

    /// <summary>The most connections seen open since the last decision (readable from any thread).</summary>
    public long Peak => Volatile.Read(ref _peak);

    /// <summary>
    /// One sample: <paramref name="now"/> on a monotonic clock and the connections open now. True
    /// when the drop is there and has held: time to see what the heap can give back.
    /// </summary>
    public bool Observe(TimeSpan now, long open, MemoryOptions options)
    {
        if (open >= _peak)
        {
            _peak = open;
            _lowSince = null;
            return false;
        }

        if (_peak - open < options.MinConnectionDrop || open * 2 > _peak)
        {
            _lowSince = null;
            return false;
        }

        _lowSince ??= now;
        if (now - _lowSince.Value < options.SettleTime
            || (_lastDrop is { } last && now - last < options.MinInterval))
        {
            return false;
        }

        _lastDrop = now;
        Reset(open);
        return true;
    }

    /// <summary>Forgets the peak (the feature was off, or a drop was decided): counting starts again from <paramref name="open"/>.</summary>
    public void Reset(long open)
    {
        _peak = open;
        _lowSince = null;
    }
}
