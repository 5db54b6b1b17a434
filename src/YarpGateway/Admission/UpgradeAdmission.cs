using YarpGateway.Configuration;

namespace YarpGateway.Admission;

/// <summary>
/// The optional upgrade rate (<see cref="UpgradeAdmissionOptions"/>): an upgrade request over the
/// rate gets 503 at once with a <c>Retry-After</c> drawn uniformly between
/// <see cref="UpgradeAdmissionOptions.RetryAfterMin"/> and <see cref="UpgradeAdmissionOptions.RetryAfterMax"/>,
/// so rejected clients do not come back in lockstep.
/// </summary>
internal sealed class UpgradeAdmission : IDisposable
{
    private readonly AdmissionMetrics _metrics;
    private readonly ReloadableOptions<AdmissionOptions> _options;
    private readonly TimeProvider _timeProvider;
    private readonly Memory.MemoryPressure _memory;
    private volatile TokenBucket? _rate;
    private (int Rate, int Burst) _settings;

    public UpgradeAdmission(ReloadableOptions<AdmissionOptions> options, AdmissionMetrics metrics, Memory.MemoryPressure memory, TimeProvider timeProvider)
    {
        _metrics = metrics;
        _memory = memory;
        _timeProvider = timeProvider;
        _options = options;
        Configure(options.Current);
        options.Changed += Configure;
    }

    /// <summary>
    /// For an upgrade request: true if within the rate (or no rate is set) and memory is not high
    /// (<see cref="Memory.MemoryPressure"/>), else answers 503 and returns false.
    /// </summary>
    public bool TryAdmit(HttpContext context)
    {
        if (_memory.IsHigh)
        {
            return _memory.TryAdmitUpgrade(context, RetryAfter());
        }

        if (_rate is not { } rate)
        {
            return true;
        }

        using var lease = rate.Limiter.AttemptAcquire(1);
        if (lease.IsAcquired)
        {
            return true;
        }

        _metrics.UpgradeRejected();
        RequestAdmission.Reject(context, RetryAfter());
        return false;
    }

    // Drawn between RetryAfterMin and RetryAfterMax, so that refused clients do not come back in lockstep.
    private TimeSpan RetryAfter()
    {
        var upgrades = _options.Current.Upgrades;
        var min = upgrades.RetryAfterMin.TotalSeconds;
        var max = Math.Max(min, upgrades.RetryAfterMax.TotalSeconds);
        return TimeSpan.FromSeconds(min + (Random.Shared.NextDouble() * (max - min)));
    }

    private void Configure(AdmissionOptions admission)
    {
        var options = admission.Upgrades;
        var settings = (options.RatePerSecond, options.Burst);
        if (settings == _settings)
        {
            return;
        }

        _settings = settings;
        var previous = _rate;
        _rate = options.RatePerSecond > 0 && options.Burst > 0 ? new TokenBucket(options.RatePerSecond, options.Burst, queueLimit: 0, _timeProvider) : null;
        previous?.Dispose();
    }

    public void Dispose()
    {
        _options.Changed -= Configure;
        _rate?.Dispose();
    }
}
