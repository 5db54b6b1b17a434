namespace YarpGateway.Telemetry;

/// <summary>
/// How many zero series one instrument may publish over the process's life (<see cref="IKnownSeries"/>),
/// and for which keys. OpenTelemetry keeps at most 2,000 series per instrument and folds every new
/// one past that into a single overflow series, so zeros for hundreds of clusters or limits would
/// leave the ones that really retry, fail or reject without series of their own (tried: 500
/// clusters filled the retry and error instruments with zeros and overflowed them). The budget is
/// half the cap; a key past it gets its series at its first event.
/// </summary>
internal sealed class ZeroSeriesBudget(int max = ZeroSeriesBudget.DefaultMax)
{
    internal const int DefaultMax = 1000;

    private readonly Lock _lock = new();
    private readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    private int _series;

    /// <summary>True when <paramref name="key"/>'s <paramref name="series"/> zeros were published before or fit now (and are counted).</summary>
    public bool TryReserve(string key, int series)
    {
        lock (_lock)
        {
            if (_keys.Contains(key))
            {
                return true;
            }

            if (_series + series > max)
            {
                return false;
            }

            _keys.Add(key);
            _series += series;
            return true;
        }
    }
}
