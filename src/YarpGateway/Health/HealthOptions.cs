namespace YarpGateway.Health;

/// <summary>Options under <c>Gateway:Health</c>.</summary>
internal sealed class HealthOptions
{
    public const string SectionName = "Gateway:Health";

    /// <summary>
    /// Removed: readiness no longer depends on backends unless a cluster opts in with
    /// <c>Metadata: { "ReadinessRequiresDestination": "true" }</c>. Still read, so that a configuration
    /// that sets it starts (a rolling update must not crash on it) with a warning saying what to do.
    /// </summary>
    public bool? RequireAvailableDestinations { get; set; }

    /// <summary>
    /// Liveness fails once the proxy endpoint has taken no new connection for this long while clients
    /// kept coming (refused at Kestrel's <c>MaxConcurrentConnections</c>, or waiting in the listen
    /// queue: an accept that stalled; not while the open connections' limit holds accept back), so that
    /// Kubernetes restarts a pod that can no longer take clients. Default 1 minute.
    /// </summary>
    public TimeSpan LiveRefusingConnectionsFor { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Liveness fails while the scheduler is pathologically late: the median thread-pool queueing
    /// delay of the recent probes (about the last 25 s) is above this, or no probe item has run for
    /// this long. Default 5 s (a healthy gateway measures well under a millisecond).
    /// </summary>
    public TimeSpan LiveMaxSchedulerDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Below this, <see cref="LiveMaxSchedulerDelay"/> is logged as a risk (valid, but a busy pod may pass it).</summary>
    public static readonly TimeSpan LowestAdvisedSchedulerDelay = TimeSpan.FromSeconds(1);

    /// <summary>Below this, <see cref="LiveRefusingConnectionsFor"/> is logged as a risk (Kubernetes' probe period is 10 s).</summary>
    public static readonly TimeSpan LowestAdvisedRefusingFor = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The liveness limits that are valid but low enough for liveness to fail on a pod that is only busy, each as a
    /// sentence naming its key: Kubernetes would restart the pod and drop every connection on it.
    /// </summary>
    public IEnumerable<string> RiskyLivenessLimits()
    {
        if (LiveMaxSchedulerDelay < LowestAdvisedSchedulerDelay)
        {
            yield return $"{SectionName}:LiveMaxSchedulerDelay is {LiveMaxSchedulerDelay}: a busy pod's scheduler delay can pass that (a pod throttled at its CPU limit stalls for up to 100 ms a period, a full collection pauses every thread), and liveness would fail. At least {LowestAdvisedSchedulerDelay} is advised (default {TimeSpan.FromSeconds(5)}).";
        }

        if (LiveRefusingConnectionsFor < LowestAdvisedRefusingFor)
        {
            yield return $"{SectionName}:LiveRefusingConnectionsFor is {LiveRefusingConnectionsFor}: a pod at its connection cap through a burst of new clients can refuse for that long, and liveness would fail. At least {LowestAdvisedRefusingFor} is advised (default {TimeSpan.FromMinutes(1)}).";
        }
    }
}
