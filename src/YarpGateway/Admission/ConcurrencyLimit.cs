using System.Threading.RateLimiting;

namespace YarpGateway.Admission;

/// <summary>
/// One concurrency limit (global, a route's or a cluster's): <see cref="FifoConcurrencyLimiter"/> (or,
/// for <c>"auto"</c>, <see cref="AdjustableConcurrencyLimiter"/>) with a bounded FIFO queue and a queue
/// timeout. A limit is replaced, never changed, when its settings
/// change on reload; requests admitted by the old one release into the old one, so a reload drops
/// nothing (for a moment both count, so the effective limit is briefly the sum).
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA1001:Types that own disposable fields should be disposable",
    Justification = "Disposing a limiter fails its queued waiters; a replaced limit must keep serving what it admitted, so it is left to the GC.")]
internal sealed class ConcurrencyLimit
{
    private readonly RateLimiter _limiter;
    private readonly AdjustableConcurrencyLimiter? _adaptive;
    private readonly GradientConcurrencyController? _controller;

    public ConcurrencyLimit(string kind, string name, ConcurrencyLimitSettings settings, TimeProvider? timeProvider = null)
    {
        Kind = kind;
        Name = name;
        Settings = settings;
        if (settings.Auto)
        {
            var clock = timeProvider ?? TimeProvider.System;
            _controller = new GradientConcurrencyController(settings.AutoMin, settings.AutoMax, settings.MaxConcurrency, clock.GetTimestamp());
            _limiter = _adaptive = new AdjustableConcurrencyLimiter(_controller, settings.MaxQueue, clock);
        }
        else
        {
            _limiter = new FifoConcurrencyLimiter(settings.MaxConcurrency, settings.MaxQueue);
        }
    }

    /// <summary>The adaptive limit's controller (its baseline, whether it is measuring), when the limit is "auto".</summary>
    internal GradientConcurrencyController? Controller => _controller;

    /// <summary>The limit in force now: the configured one, or where the adaptive limit stands.</summary>
    public int CurrentLimit => _adaptive?.Limit ?? Settings.MaxConcurrency;

    /// <summary>Whether the limit follows its backend's latency (<c>"MaxConcurrency": "auto"</c>).</summary>
    public bool IsAdaptive => _adaptive is not null;

    /// <summary>
    /// Whether a request for a stream gives its slot back when its response starts (<see cref="StreamSlot"/>):
    /// the global limit, a brake on work waiting for backends, and a cluster's share of it; and an adaptive limit,
    /// which learns from how long slots are held. A fixed route or cluster limit, set to spare a backend, keeps it
    /// to the end.
    /// </summary>
    public bool FreesStartedStreams => IsAdaptive || Kind is "global" or AdmissionLimits.ClusterShareKind;

    /// <summary><c>global</c>, <c>route</c>, <c>cluster</c>, <c>cluster_share</c> (<see cref="AdmissionOptions.ClusterShare"/>), or <c>upload_share</c> (<see cref="AdmissionOptions.UploadShare"/>).</summary>
    public string Kind { get; }

    /// <summary>The route or cluster id, or <c>global</c>.</summary>
    public string Name { get; }

    public ConcurrencyLimitSettings Settings { get; }

    public long QueueDepth => _limiter.GetStatistics()?.CurrentQueuedCount ?? 0;

    /// <summary>Requests this limit has rejected since it came into force (for the status page).</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    private long _rejected;

    /// <summary>
    /// Where <see cref="AdmissionMetrics"/> counts this limit's admissions: set when the limit comes into force, shared
    /// with the limit it replaced (same kind and name), null for a cluster's share, whose admissions are not counted.
    /// </summary>
    internal System.Runtime.CompilerServices.StrongBox<long>? AdmittedCount { get; set; }

    /// <summary>Counts one rejection (called by the metrics when a request is not admitted).</summary>
    public void CountRejection() => Interlocked.Increment(ref _rejected);

    public long InUse => _adaptive?.InUse ?? Settings.MaxConcurrency - (_limiter.GetStatistics()?.CurrentAvailablePermits ?? Settings.MaxConcurrency);

    /// <summary>Takes a slot now if one is free and no one waits for one (no allocation for a fixed limit); never queues.</summary>
    public AdmissionResult TryAcquireNow()
    {
        var lease = _limiter.AttemptAcquire(1);
        if (lease.IsAcquired)
        {
            return AdmissionResult.Admitted(lease, TimeSpan.Zero);
        }

        lease.Dispose();
        return AdmissionResult.Rejected(AdmissionRejection.QueueFull);
    }

    /// <summary>Takes a slot now if one is free (no allocation for a fixed limit), else queues with the timeout.</summary>
    public ValueTask<AdmissionResult> AcquireAsync(TimeProvider timeProvider, CancellationToken requestAborted)
    {
        var lease = _limiter.AttemptAcquire(1);
        if (lease.IsAcquired)
        {
            return ValueTask.FromResult(AdmissionResult.Admitted(lease, TimeSpan.Zero));
        }

        lease.Dispose();
        return Settings.MaxQueue == 0
            ? ValueTask.FromResult(AdmissionResult.Rejected(AdmissionRejection.QueueFull))
            : WaitAsync(timeProvider, requestAborted);
    }

    private async ValueTask<AdmissionResult> WaitAsync(TimeProvider timeProvider, CancellationToken requestAborted)
    {
        var started = timeProvider.GetTimestamp();
        using var timeout = new CancellationTokenSource(Settings.QueueTimeout, timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, requestAborted);
        try
        {
            var lease = await _limiter.AcquireAsync(1, linked.Token);
            if (lease.IsAcquired)
            {
                return AdmissionResult.Admitted(lease, timeProvider.GetElapsedTime(started));
            }

            lease.Dispose();
            return AdmissionResult.Rejected(AdmissionRejection.QueueFull);
        }
        catch (OperationCanceledException)
        {
            // Cancelling removes the waiter from the queue at once.
            return AdmissionResult.Rejected(requestAborted.IsCancellationRequested ? AdmissionRejection.ClientGone : AdmissionRejection.QueueTimeout, timeProvider.GetElapsedTime(started));
        }
    }
}

/// <summary>The outcome of <see cref="ConcurrencyLimit.AcquireAsync"/>: a lease to dispose when done, or why not.</summary>
internal readonly struct AdmissionResult
{
    private AdmissionResult(RateLimitLease? lease, AdmissionRejection reason, TimeSpan waited)
    {
        Lease = lease;
        Reason = reason;
        Waited = waited;
    }

    public RateLimitLease? Lease { get; }

    public bool IsAdmitted => Lease is not null;

    public AdmissionRejection Reason { get; }

    /// <summary>Time spent queued (zero when a slot was free).</summary>
    public TimeSpan Waited { get; }

    public static AdmissionResult Admitted(RateLimitLease lease, TimeSpan waited) => new(lease, default, waited);

    public static AdmissionResult Rejected(AdmissionRejection reason, TimeSpan waited = default) => new(null, reason, waited);
}
