using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using YarpGateway.Telemetry;

namespace YarpGateway.Admission;

/// <summary>
/// Admission's instruments: request limits (admitted, rejected, queue wait, and gauges of each
/// limit), connection admission and the upgrade rate. Known series at 0 from start: each limit's
/// rejections by reason (when the limit is created), connection admission's closes by reason, its delayed
/// connections, expired first requests and paused accept.
/// What every admitted request would record is kept off the per-request path: admissions are an
/// interlocked count per limit, read at each scrape (an observable counter), and the queue-wait histogram
/// records only requests that waited (recording each request's zero, with its tags, was 0.8 % of the CPU
/// of a proxied request in the profile, with the counter).
/// </summary>
internal sealed class AdmissionMetrics : IKnownSeries
{
    private static readonly double[] WaitBuckets = [0, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
    private static readonly string[] ConnectionCloseReasons = ["wait_timeout", "queue_full", "client_gone", "shutdown", ClientAddressConnectionLimit.Reason];
    private static readonly AdmissionRejection[] LimitRejections = [AdmissionRejection.QueueFull, AdmissionRejection.QueueTimeout, AdmissionRejection.ClientGone];

    private readonly Counter<long> _rejected;
    private readonly Histogram<double> _queueWait;
    private readonly Counter<long> _connectionsDelayed;
    private readonly Counter<long> _connectionsClosed;
    private readonly Histogram<double> _connectionWait;
    private readonly Counter<long> _firstRequestExpired;
    private readonly Counter<double> _acceptPaused;
    private volatile AdmissionLimits? _limits;
    private volatile Func<(double Rate, double Target, double Delay)>? _connectionRate;
    private volatile Func<(int InUse, int Size)>? _acceptWindow;
    private long _rejectedTotal;
    private long _acceptPausedTicks;

    // Admissions by limit (kind, name). A limit replaced on reload counts on into its predecessor's count, so the
    // exported counter never goes back; a removed route's or cluster's stays, as a counter's series would.
    private readonly ConcurrentDictionary<(string Kind, string Name), StrongBox<long>> _admittedCounts = new();

    public AdmissionMetrics(IMeterFactory meterFactory, Endpoints.ProxyListenQueue listenQueue, Endpoints.OpenConnectionLimit openLimit)
    {
        var meter = meterFactory.Create(GatewayMeter.Name);
        meter.CreateObservableGauge("gateway.connection_admission.max_open", () => openLimit.Limit is { } limit ? [new Measurement<int>(limit)] : Array.Empty<Measurement<int>>(), unit: "{connection}",
            description: "Proxy connections allowed open at once (Gateway:Admission:Connections:MaxOpen, or what the open-file limit allows); at it, new connections wait in the listen queue. Absent: no limit.");
        meter.CreateObservableCounter(
            "gateway.admission.admitted", ObserveAdmitted, unit: "{request}",
            description: "Requests admitted by a concurrency limit (limit: global, route or cluster; name: its id).");
        _rejected = meter.CreateCounter<long>(
            "gateway.admission.rejected", unit: "{request}",
            description: "Requests not admitted, by limit, name and reason (queue_full, queue_timeout, client_gone, upgrade_rate).");
        _queueWait = meter.CreateHistogram(
            "gateway.admission.queue.wait", unit: "s",
            description: "Time requests that found their limit full spent waiting in its queue, admitted or timed out (a request that found a slot free is not recorded: gateway.admission.admitted counts every admitted request).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = WaitBuckets });
        meter.CreateObservableGauge("gateway.admission.queue.depth", () => ObserveLimits(l => l.QueueDepth), unit: "{request}", description: "Requests waiting in each limit's queue.");
        meter.CreateObservableGauge("gateway.admission.queue.capacity", () => ObserveLimits(l => l.Settings.MaxQueue), unit: "{request}", description: "Each limit's queue size (MaxQueue).");
        meter.CreateObservableGauge("gateway.admission.active", () => ObserveLimits(l => l.InUse), unit: "{request}", description: "Requests holding a slot of each limit.");
        meter.CreateObservableGauge("gateway.admission.limit", () => ObserveLimits(l => l.CurrentLimit), unit: "{request}", description: "Each limit's concurrency: MaxConcurrency, or where an adaptive (\"auto\") limit stands now.");

        meter.CreateObservableGauge("gateway.connection_admission.rate", () => _connectionRate?.Invoke().Rate ?? 0, unit: "{connection}/s",
            description: "New connections taken on per second now: the adaptive rate, or the fixed RatePerSecond (0: none).");
        meter.CreateObservableGauge("gateway.connection_admission.delay_target", () => _connectionRate?.Invoke().Target ?? 0, unit: "s",
            description: "The delay the adaptive connection rate keeps under now: Adaptive:EstablishedTargetDelay while open connections are busy, else Adaptive:TargetDelay; 0 when it does not run.");
        meter.CreateObservableGauge("gateway.connection_admission.delay", () => _connectionRate?.Invoke().Delay ?? 0, unit: "s",
            description: "The worst delay the adaptive connection rate measured in its last 100 ms: the thread pool's or the socket engine's.");
        meter.CreateObservableGauge("gateway.connection_admission.accept_window.active", () => _acceptWindow?.Invoke().InUse ?? 0, unit: "{connection}",
            description: "New connections let in by the accept window (Gateway:Admission:Connections:AcceptWindow) and still in their first request.");
        meter.CreateObservableGauge("gateway.connection_admission.accept_window.size", () => _acceptWindow?.Invoke().Size ?? 0, unit: "{connection}",
            description: "The accept window's size now, set with the adaptive rate from the delay it measures (at most AcceptWindow); 0 when it does not run.");
        meter.CreateObservableGauge("gateway.connection_admission.listen_queue", () => listenQueue.Read().Waiting, unit: "{connection}",
            description: "New connections the kernel holds for the proxy endpoint, not yet accepted by the gateway (where they wait while accept is paced; Linux).");
        meter.CreateObservableGauge("gateway.connection_admission.listen_queue.capacity", () => listenQueue.Read().Capacity, unit: "{connection}",
            description: "The most the kernel holds for the proxy endpoint: Gateway:Transport:Backlog, capped by net.core.somaxconn (Linux). Past it, new clients' handshakes are dropped.");
        _connectionsDelayed = meter.CreateCounter<long>(
            "gateway.connection_admission.delayed", unit: "{connection}",
            description: "New proxy connections that had to wait for connection admission and were then served.");
        _connectionsClosed = meter.CreateCounter<long>(
            "gateway.connection_admission.closed", unit: "{connection}",
            description: "New proxy connections closed by connection admission, by reason (wait_timeout, queue_full, client_gone, shutdown, client_address_limit).");
        _firstRequestExpired = meter.CreateCounter<long>(
            "gateway.connection_admission.first_request_expired", unit: "{connection}",
            description: "New proxy connections still in their first request after MaxFirstRequestTime: their first-request slot was freed, the connection kept (slow clients, or slow first responses).");
        _acceptPaused = meter.CreateCounter<double>(
            "gateway.connection_admission.accept_paused", unit: "s",
            description: "Time the proxy endpoint did not accept new connections because the connection rate's bucket was empty and the accept window full (PaceAccept); meanwhile new connections wait in the kernel's listen queue.");
        _connectionWait = meter.CreateHistogram(
            "gateway.connection_admission.wait", unit: "s",
            description: "Time delayed or closed connections waited for connection admission.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = WaitBuckets });
    }

    /// <summary>Admission rejections since start, for the saturation log.</summary>
    public long RejectedTotal => Interlocked.Read(ref _rejectedTotal);

    /// <summary>New connections connection admission closed since start (any reason but shutdown).</summary>
    public long ConnectionsRefused => Interlocked.Read(ref _connectionsRefused);

    /// <summary>New connections that had to wait for connection admission and were then served, since start.</summary>
    public long ConnectionsDelayed => Interlocked.Read(ref _connectionsDelayedTotal);

    /// <summary>The limits in force now.</summary>
    public IEnumerable<ConcurrencyLimit> Limits => _limits?.All() ?? [];

    private long _connectionsRefused;
    private long _connectionsDelayedTotal;

    /// <summary>The limits whose queues the gauges report; set once by <see cref="AdmissionLimits"/>.</summary>
    public void Observe(AdmissionLimits limits) => _limits = limits;

    /// <summary>Where the connection-rate gauges read from: the rate now (per second), the adaptive rate's target and measured delay (seconds; 0 when it does not run).</summary>
    public void ObserveConnectionRate(Func<(double Rate, double Target, double Delay)> read) => _connectionRate = read;

    /// <summary>Where the accept-window gauges read from: places connections hold, and the window's size (0 when it does not run).</summary>
    public void ObserveAcceptWindow(Func<(int InUse, int Size)> read) => _acceptWindow = read;

    /// <summary>The connection rate now, its adaptive target and measured delay (seconds), as the gauges read them.</summary>
    public (double Rate, double Target, double Delay) ConnectionRate => _connectionRate?.Invoke() ?? default;

    private readonly ZeroSeriesBudget _rejectionZeros = new();

    /// <summary>A limit came into force: its rejections by reason start at 0 (within <see cref="ZeroSeriesBudget"/>).</summary>
    public void LimitCreated(ConcurrencyLimit limit)
    {
        if (!AdmissionLimits.IsShare(limit.Kind))
        {
            limit.AdmittedCount = _admittedCounts.GetOrAdd((limit.Kind, limit.Name), static _ => new StrongBox<long>());
        }

        if (!_rejectionZeros.TryReserve(limit.Kind + "|" + limit.Name, LimitRejections.Length))
        {
            return;
        }

        foreach (var reason in LimitRejections)
        {
            var tags = Tags(limit);
            tags.Add("reason", reason.ToTag());
            _rejected.Add(0, tags);
        }
    }

    public void Publish()
    {
        foreach (var reason in ConnectionCloseReasons)
        {
            _connectionsClosed.Add(0, new KeyValuePair<string, object?>("reason", reason));
        }

        _acceptPaused.Add(0);
        _connectionsDelayed.Add(0);
        _firstRequestExpired.Add(0);

        _rejected.Add(0, UpgradeRateTags());
        if (_limits is { } limits)
        {
            foreach (var limit in limits.All())
            {
                LimitCreated(limit);
            }
        }
    }

    public void Admitted(ConcurrencyLimit limit, TimeSpan waited)
    {
        if (limit.AdmittedCount is { } count)
        {
            Interlocked.Increment(ref count.Value);
        }

        if (waited > TimeSpan.Zero && _queueWait.Enabled)
        {
            _queueWait.Record(waited.TotalSeconds, Tags(limit));
        }
    }

    public void Rejected(ConcurrencyLimit limit, AdmissionRejection reason, TimeSpan waited)
    {
        Interlocked.Increment(ref _rejectedTotal);
        limit.CountRejection();
        if (_rejected.Enabled)
        {
            var tags = Tags(limit);
            tags.Add("reason", reason.ToTag());
            _rejected.Add(1, tags);
        }

        if (reason == AdmissionRejection.QueueTimeout && _queueWait.Enabled)
        {
            _queueWait.Record(waited.TotalSeconds, Tags(limit));
        }
    }

    public void UpgradeRejected()
    {
        Interlocked.Increment(ref _rejectedTotal);
        if (_rejected.Enabled)
        {
            _rejected.Add(1, UpgradeRateTags());
        }
    }

    public void ConnectionDelayed(TimeSpan waited)
    {
        Interlocked.Increment(ref _connectionsDelayedTotal);
        _connectionsDelayed.Add(1);
        if (_connectionWait.Enabled)
        {
            _connectionWait.Record(waited.TotalSeconds);
        }
    }

    public void ConnectionFirstRequestExpired() => _firstRequestExpired.Add(1);

    /// <summary>Accept paused for the connection rate for this long.</summary>
    public void AcceptPaused(TimeSpan paused)
    {
        Interlocked.Add(ref _acceptPausedTicks, paused.Ticks);
        _acceptPaused.Add(paused.TotalSeconds);
    }

    /// <summary>Seconds the proxy endpoint's accept has been paused for the connection rate since start.</summary>
    public double AcceptPausedSeconds => TimeSpan.FromTicks(Interlocked.Read(ref _acceptPausedTicks)).TotalSeconds;

    public void ConnectionAdmissionClosed(string reason, TimeSpan waited)
    {
        if (reason != "shutdown")
        {
            Interlocked.Increment(ref _connectionsRefused);
        }

        _connectionsClosed.Add(1, new KeyValuePair<string, object?>("reason", reason));
        if (_connectionWait.Enabled)
        {
            _connectionWait.Record(waited.TotalSeconds);
        }
    }

    /// <summary>A new connection closed because its client held <see cref="ConnectionAdmissionOptions.MaxPerClientAddress"/>: it waited for nothing, so no wait is recorded.</summary>
    public void ClientAddressLimited()
    {
        Interlocked.Increment(ref _connectionsRefused);
        _connectionsClosed.Add(1, new KeyValuePair<string, object?>("reason", ClientAddressConnectionLimit.Reason));
    }

    private static TagList UpgradeRateTags() => new() { { "limit", "upgrade" }, { "name", "global" }, { "reason", AdmissionRejection.UpgradeRate.ToTag() } };

    private static TagList Tags(ConcurrencyLimit limit) => Tags(limit.Kind, limit.Name);

    private static TagList Tags(string kind, string name) => new() { { "limit", kind }, { "name", name } };

    private IEnumerable<Measurement<long>> ObserveAdmitted()
    {
        foreach (var ((kind, name), count) in _admittedCounts)
        {
            var value = Interlocked.Read(ref count.Value);
            if (value > 0) // as a counter's series: from the first admission
            {
                yield return new Measurement<long>(value, Tags(kind, name));
            }
        }
    }

    private IEnumerable<Measurement<long>> ObserveLimits(Func<ConcurrencyLimit, long> value)
        => _limits is { } limits ? limits.All().Select(l => new Measurement<long>(value(l), Tags(l))) : [];
}
