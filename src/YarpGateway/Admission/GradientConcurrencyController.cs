namespace YarpGateway.Admission;

/// <summary>
/// A concurrency limit that follows the backend's latency (a gradient limit, in the manner of
/// Netflix's concurrency-limits and Envoy's adaptive concurrency filter).
/// <list type="bullet">
/// <item>The <b>baseline</b> is the backend's latency at low concurrency, measured at start and every
/// <see cref="ProbeInterval"/> thereafter (as Envoy measures its minimum round-trip time): the limit
/// drops to <see cref="MinLimit"/> until <see cref="ProbeSamples"/> requests that ran at that
/// concurrency have finished (or <see cref="ProbeTimeout"/> passes), their median latency becomes the
/// baseline, and the limit returns to where it was. A window whose mean is lower lowers it. The
/// median, not the mean: a new limit's first requests also open the backend connections and run
/// cold code (measured: 30 to 57 ms against a steady 7 to 10 ms), and a mean taken with them set a
/// baseline nothing afterwards could lower, so the limit settled far above the backend's knee.</item>
/// <item>Every 100 ms <b>window</b>, the mean latency of the requests that finished in it is compared
/// with the baseline: gradient = <see cref="Tolerance"/> × baseline / mean, kept within 0.5 and 1. The
/// limit moves towards limit × gradient, plus its square root when the gradient is 1 and the
/// limit is at least half in use (room to learn whether more is fine), smoothed by
/// <see cref="Smoothing"/>, within <see cref="MinLimit"/> and <see cref="MaxLimit"/>.</item>
/// </list>
/// Pure arithmetic under a lock; the caller feeds it each request's latency and the clock.
/// </summary>
internal sealed class GradientConcurrencyController
{
    public const double Tolerance = 1.5;
    public const double Smoothing = 0.2;
    public const int ProbeSamples = 20;
    public static readonly TimeSpan Window = TimeSpan.FromMilliseconds(100);
    public static readonly TimeSpan ProbeInterval = TimeSpan.FromSeconds(30);
    public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(2);

    private readonly Lock _gate = new();
    private double _limit;
    private double _baselineSeconds = double.NaN;
    private double _sumSeconds;
    private int _samples;
    private int _maxInFlight;
    private long _windowStart;

    private bool _probing = true;
    private double _limitBeforeProbe;
    private readonly double[] _probeSeconds = new double[ProbeSamples];
    private int _probeSamples;
    private long _probeStart;
    private long _nextProbe;

    public GradientConcurrencyController(int minLimit, int maxLimit, int initialLimit, long now)
    {
        MinLimit = minLimit;
        MaxLimit = maxLimit;
        _limitBeforeProbe = Math.Clamp(initialLimit, minLimit, maxLimit);
        _limit = minLimit; // the first baseline is measured before anything else
        _windowStart = _probeStart = now;
    }

    public int MinLimit { get; }

    public int MaxLimit { get; }

    /// <summary>The limit in force now.</summary>
    public int Limit => (int)Math.Round(Volatile.Read(ref _limit));

    /// <summary>The baseline latency in seconds, NaN until the first measurement.</summary>
    public double BaselineSeconds => Volatile.Read(ref _baselineSeconds);

    /// <summary>Whether the limit is held at the minimum to measure the baseline.</summary>
    public bool Probing
    {
        get
        {
            lock (_gate)
            {
                return _probing;
            }
        }
    }

    /// <summary>
    /// One request's latency, with the requests in flight when it was admitted (itself included).
    /// Returns true when the limit changed (the caller then applies <see cref="Limit"/>).
    /// </summary>
    public bool Sample(TimeSpan latency, int inFlight, long now, TimeProvider timeProvider)
    {
        lock (_gate)
        {
            var seconds = latency.TotalSeconds;
            if (_probing)
            {
                if (inFlight <= MinLimit && _probeSamples < ProbeSamples)
                {
                    _probeSeconds[_probeSamples++] = seconds;
                }

                if (_probeSamples < ProbeSamples && timeProvider.GetElapsedTime(_probeStart, now) < ProbeTimeout)
                {
                    return false;
                }

                if (_probeSamples > 0)
                {
                    Volatile.Write(ref _baselineSeconds, Median(_probeSeconds.AsSpan(0, _probeSamples)));
                }

                _probing = false;
                _nextProbe = now + (long)(ProbeInterval.TotalSeconds * timeProvider.TimestampFrequency);
                Volatile.Write(ref _limit, _limitBeforeProbe);
                ResetWindow(now);
                return true;
            }

            _sumSeconds += seconds;
            _samples++;
            _maxInFlight = Math.Max(_maxInFlight, inFlight);
            if (timeProvider.GetElapsedTime(_windowStart, now) < Window)
            {
                return false;
            }

            Update(_sumSeconds / _samples, _maxInFlight);
            ResetWindow(now);
            if (now >= _nextProbe)
            {
                _probing = true;
                _limitBeforeProbe = _limit;
                _probeSamples = 0;
                _probeStart = now;
                Volatile.Write(ref _limit, MinLimit);
            }

            return true;
        }
    }

    private static double Median(Span<double> samples)
    {
        samples.Sort();
        var middle = samples.Length / 2;
        return samples.Length % 2 == 1 ? samples[middle] : (samples[middle - 1] + samples[middle]) / 2;
    }

    private void ResetWindow(long now)
    {
        _windowStart = now;
        _sumSeconds = 0;
        _samples = 0;
        _maxInFlight = 0;
    }

    private void Update(double averageSeconds, int maxInFlight)
    {
        var baseline = _baselineSeconds;
        if (double.IsNaN(baseline) || averageSeconds < baseline)
        {
            baseline = averageSeconds;
            Volatile.Write(ref _baselineSeconds, baseline);
        }

        var gradient = averageSeconds <= 0 ? 1 : Math.Clamp(Tolerance * baseline / averageSeconds, 0.5, 1.0);
        var target = _limit * gradient;
        if (gradient >= 1 && maxInFlight >= _limit / 2)
        {
            target += Math.Sqrt(_limit);
        }

        var next = (_limit * (1 - Smoothing)) + (target * Smoothing);
        Volatile.Write(ref _limit, Math.Clamp(next, MinLimit, MaxLimit));
    }
}
