namespace YarpGateway.Tests.Resilience;

/// <summary>A clock the test moves by hand; one-shot timers fire when <see cref="Advance"/> passes their due time.</summary>
internal sealed class ManualTimeProvider : TimeProvider
{
    private readonly List<ManualTimer> _timers = [];
    private long _ticks = TimeSpan.TicksPerDay;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => _ticks;

    /// <summary>Wall-clock time moves with <see cref="Advance"/> too, from a fixed start.</summary>
    public override DateTimeOffset GetUtcNow() => new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero) + TimeSpan.FromTicks(_ticks);

    public void Advance(TimeSpan by)
    {
        _ticks += by.Ticks;
        foreach (var timer in _timers.Where(t => t.DueTicks <= _ticks).ToList())
        {
            _timers.Remove(timer);
            timer.Fire();
        }
    }

    /// <summary>Timers created and neither fired nor disposed.</summary>
    public int PendingTimers => _timers.Count;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        if (period != Timeout.InfiniteTimeSpan)
        {
            throw new NotSupportedException("Only one-shot timers are simulated.");
        }

        var timer = new ManualTimer(this, callback, state, _ticks + dueTime.Ticks);
        _timers.Add(timer);
        return timer;
    }

    private sealed class ManualTimer(ManualTimeProvider clock, TimerCallback callback, object? state, long dueTicks) : ITimer
    {
        public long DueTicks { get; } = dueTicks;

        public void Fire() => callback(state);

        public bool Change(TimeSpan dueTime, TimeSpan period) => throw new NotSupportedException();

        public void Dispose() => clock._timers.Remove(this);

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
