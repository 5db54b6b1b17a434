namespace YarpGateway.Telemetry;

/// <summary>
/// Says yes the first time, then at most once per interval, without a lock: for a line that reports a state
/// reached over and over (a limit that stays full), where <see cref="LogThrottle"/>'s one second would be too often.
/// </summary>
internal sealed class OncePer(TimeSpan interval, TimeProvider timeProvider)
{
    private long _last = long.MinValue;

    /// <summary>True for the one caller that may act now.</summary>
    public bool Now()
    {
        var now = timeProvider.GetTimestamp();
        var last = Interlocked.Read(ref _last);
        return (last == long.MinValue || timeProvider.GetElapsedTime(last, now) >= interval)
            && Interlocked.CompareExchange(ref _last, now, last) == last;
    }
}
