namespace YarpGateway.Memory;

/// <summary>What <see cref="MemoryReturnTrigger.Observe"/> decided for one sample.</summary>
internal enum MemoryReturnDecision
{
    /// <summary>Nothing to do: no drop, not settled yet, or too soon after the last compaction.</summary>
    None,

    /// <summary>Run the compacting collection now.</summary>
    Compact,

    /// <summary>The drop is there, but the live heap is over <see cref="MemoryOptions.MaxHeapBytes"/>.</summary>
    HeapTooLarge,
}

/// <summary>
/// Decides when many clients have left for good: open connections at most half of their peak since
/// the last decision, at least <see cref="MemoryOptions.MinConnectionDrop"/> fewer, for
/// <see cref="MemoryOptions.SettleTime"/> without a break. A decision (either way) starts a new peak
/// from the connections open then, so one drop is decided once. Not thread-safe: one sampler calls it.
/// </summary>
internal sealed class MemoryReturnTrigger
{
    private long _peak;
    private TimeSpan? _lowSince;
    private TimeSpan? _lastCompaction;

    /// <summary>The most connections seen open since the last decision.</summary>
    public long Peak => _peak;

    /// <summary>One sample: <paramref name="now"/> on a monotonic clock, the connections open now, the live heap.</summary>
    public MemoryReturnDecision Observe(TimeSpan now, long open, long liveHeapBytes, MemoryOptions options)
    {
        if (open >= _peak)
        {
            _peak = open;
            _lowSince = null;
            return MemoryReturnDecision.None;
        }

        if (_peak - open < options.MinConnectionDrop || open * 2 > _peak)
        {
            _lowSince = null;
            return MemoryReturnDecision.None;
        }

        _lowSince ??= now;
        if (now - _lowSince.Value < options.SettleTime
            || (_lastCompaction is { } last && now - last < options.MinInterval))
        {
            return MemoryReturnDecision.None;
        }

        var decision = liveHeapBytes > options.MaxHeapBytes ? MemoryReturnDecision.HeapTooLarge : MemoryReturnDecision.Compact;
        if (decision == MemoryReturnDecision.Compact)
        {
            _lastCompaction = now;
        }

        Reset(open);
        return decision;
    }

    /// <summary>Forgets the peak (the feature was off, or a decision was made): counting starts again from <paramref name="open"/>.</summary>
    public void Reset(long open)
    {
        _peak = open;
        _lowSince = null;
    }
}
