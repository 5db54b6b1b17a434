namespace YarpGateway.Admission;

/// <summary>
/// The pace of connection admission, set from how late the gateway is (AIMD, as TCP sets its window):
/// every update, when the measured delay is over the target the rate is cut to 70 %; when it is under
/// the target and new connections are waiting for it, the rate grows by a quarter (under half the
/// target) or by a tenth of the initial rate (nearer the target); with nobody waiting it drifts back
/// to the initial rate. It stays within <see cref="MinRate"/> and <see cref="MaxRate"/>. The target is
/// <see cref="EstablishedTargetDelay"/> for an update the caller says open connections are busy in, else
/// <see cref="TargetDelay"/>. Pure arithmetic: the clock and the measurements are the caller's.
/// </summary>
internal sealed class AdaptiveRateController(double initialRate, double minRate, double maxRate, TimeSpan targetDelay, TimeSpan? establishedTargetDelay = null)
{
    public const double DecreaseFactor = 0.7;
    public const double IncreaseFactor = 1.25;

    public double Rate { get; private set; } = Math.Clamp(initialRate, minRate, maxRate);

    public double InitialRate { get; } = Math.Clamp(initialRate, minRate, maxRate);

    public double MinRate { get; } = minRate;

    public double MaxRate { get; } = maxRate;

    public TimeSpan TargetDelay { get; } = targetDelay;

    /// <summary>The target while open connections are busy: at most <see cref="TargetDelay"/> (the same when not given).</summary>
    public TimeSpan EstablishedTargetDelay { get; } = establishedTargetDelay is { } established && established < targetDelay ? established : targetDelay;

    /// <summary>The target the last update kept to (<see cref="TargetDelay"/> before the first).</summary>
    public TimeSpan Target { get; private set; } = targetDelay;

    /// <summary>True when the last update only drifted the rate back towards the initial one (nobody waiting, the delay under the target).</summary>
    public bool Drifting { get; private set; }

    /// <summary>
    /// Whether a change from <paramref name="loggedRate"/> (the rate last logged) to <paramref name="rate"/> is
    /// worth a log line: a fifth or more, at most once a second, and while the rate only drifts back
    /// (<see cref="Drifting"/>) not its steps but its arrival at the initial rate.
    /// </summary>
    public bool ShouldLog(double loggedRate, double rate, TimeSpan sinceLogged)
        => sinceLogged >= TimeSpan.FromSeconds(1)
            && (Drifting ? rate == InitialRate && loggedRate != InitialRate : Math.Abs(rate - loggedRate) >= loggedRate * 0.2);

    /// <summary>
    /// The new rate, given the worst delay measured since the last update, whether connections waited for a token, and
    /// whether open connections were busy (then <see cref="EstablishedTargetDelay"/> is the target).
    /// </summary>
    public double Update(TimeSpan delay, bool demand, bool established = false)
    {
        var target = Target = established ? EstablishedTargetDelay : TargetDelay;
        Drifting = delay <= target && !demand;
        if (delay > target)
        {
            Rate = Math.Max(MinRate, Rate * DecreaseFactor);
        }
        else if (demand)
        {
            Rate = Math.Min(MaxRate, delay * 2 < target ? Rate * IncreaseFactor : Rate + (InitialRate * 0.1));
        }
        else if (Rate > InitialRate)
        {
            Rate = Math.Max(InitialRate, Rate * 0.95);
        }
        else if (Rate < InitialRate)
        {
            Rate = Math.Min(InitialRate, Rate * 1.1);
        }

        return Rate;
    }
}
