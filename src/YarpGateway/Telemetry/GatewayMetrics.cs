using System.Diagnostics;
using System.Diagnostics.Metrics;
using YarpGateway.Admission;

namespace YarpGateway.Telemetry;

/// <summary>
/// Every instrument the gateway publishes, created once from <see cref="IMeterFactory"/>.
/// Features report through methods here so that names, units and tags live in one place.
/// Tags carry only configured names (route and cluster ids) and fixed words, never request data.
/// </summary>
internal sealed class GatewayMetrics
{
    public const string MeterName = "YarpGateway";

    private static readonly double[] WaitBuckets = [0, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    private readonly Counter<long> _configReloads;
    private readonly Counter<long> _admitted;
    private readonly Counter<long> _rejected;
    private readonly Histogram<double> _queueWait;
    private readonly Counter<long> _connectionsDelayed;
    private readonly Counter<long> _connectionsClosed;
    private readonly Histogram<double> _connectionWait;

    private readonly Counter<long> _attempts;
    private readonly Counter<long> _retries;
    private readonly Counter<long> _budgetExhausted;
    private readonly Counter<long> _timeouts;
    private readonly Counter<long> _ejections;
    private readonly Counter<long> _reactivations;
    private readonly Counter<long> _ejectionsSkipped;
    private volatile AdmissionLimits? _admissionLimits;

    public GatewayMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        _configReloads = meter.CreateCounter<long>(
            "gateway.config.reloads",
            unit: "{reload}",
            description: "Proxy configuration reloads, by result (applied or rejected).");

        _admitted = meter.CreateCounter<long>(
            "gateway.admission.admitted", unit: "{request}",
            description: "Requests admitted by a concurrency limit (limit: global, route or cluster; name: its id).");
        _rejected = meter.CreateCounter<long>(
            "gateway.admission.rejected", unit: "{request}",
            description: "Requests not admitted, by limit, name and reason (queue_full, queue_timeout, client_gone, upgrade_rate).");
        _queueWait = meter.CreateHistogram(
            "gateway.admission.queue.wait", unit: "s",
            description: "Time admitted and timed-out requests spent waiting for a slot (0 when one was free).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = WaitBuckets });
        meter.CreateObservableGauge(
            "gateway.admission.queue.depth", () => ObserveLimits(l => l.QueueDepth), unit: "{request}",
            description: "Requests waiting in each limit's queue.");
        meter.CreateObservableGauge(
            "gateway.admission.queue.capacity", () => ObserveLimits(l => l.Settings.MaxQueue), unit: "{request}",
            description: "Each limit's queue size (MaxQueue).");
        meter.CreateObservableGauge(
            "gateway.admission.active", () => ObserveLimits(l => l.InUse), unit: "{request}",
            description: "Requests holding a slot of each limit.");
        meter.CreateObservableGauge(
            "gateway.admission.limit", () => ObserveLimits(l => l.Settings.MaxConcurrency), unit: "{request}",
            description: "Each limit's concurrency (MaxConcurrency).");

        _connectionsDelayed = meter.CreateCounter<long>(
            "gateway.connection_admission.delayed", unit: "{connection}",
            description: "New proxy connections that had to wait for connection admission and were then served.");
        _connectionsClosed = meter.CreateCounter<long>(
            "gateway.connection_admission.closed", unit: "{connection}",
            description: "New proxy connections closed by connection admission, by reason (wait_timeout, queue_full, client_gone).");
        _connectionWait = meter.CreateHistogram(
            "gateway.connection_admission.wait", unit: "s",
            description: "Time delayed or closed connections waited for connection admission.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = WaitBuckets });

        _attempts = meter.CreateCounter<long>("gateway.proxy.attempts", unit: "{attempt}", description: "Attempts to send a request to a destination, first tries and retries, by cluster.");
        _retries = meter.CreateCounter<long>("gateway.proxy.retries", unit: "{retry}", description: "Retries, by cluster and reason (status_502/503/504, connect_failure, connect_timeout, connection_reset, try_timeout).");
        _budgetExhausted = meter.CreateCounter<long>("gateway.proxy.retry_budget.exhausted", unit: "{retry}", description: "Retries not made because the cluster's retry budget was spent.");
        _timeouts = meter.CreateCounter<long>("gateway.proxy.timeouts", unit: "{timeout}", description: "Requests answered 504 by a timeout, by cluster and kind (connect, try, route, activity).");
        _ejections = meter.CreateCounter<long>("gateway.outlier.ejections", unit: "{ejection}", description: "Destinations ejected by outlier ejection, by cluster and destination.");
        _reactivations = meter.CreateCounter<long>("gateway.outlier.reactivations", unit: "{reactivation}", description: "Ejected destinations reactivated, by cluster and destination.");
        _ejectionsSkipped = meter.CreateCounter<long>("gateway.outlier.ejections_skipped", unit: "{ejection}", description: "Ejections not made because MaxEjectedPercent of the cluster was already ejected.");
    }

    public void ProxyAttempt(string? cluster) => _attempts.Add(1, new KeyValuePair<string, object?>("cluster", cluster));

    public void Retry(string? cluster, string reason) => _retries.Add(1, new TagList { { "cluster", cluster }, { "reason", reason } });

    public void RetryBudgetExhausted(string? cluster) => _budgetExhausted.Add(1, new KeyValuePair<string, object?>("cluster", cluster));

    public void Timeout(string cluster, string kind) => _timeouts.Add(1, new TagList { { "cluster", cluster }, { "kind", kind } });

    public void Ejected(string cluster, string destination) => _ejections.Add(1, new TagList { { "cluster", cluster }, { "destination", destination } });

    public void Reactivated(string cluster, string destination) => _reactivations.Add(1, new TagList { { "cluster", cluster }, { "destination", destination } });

    public void EjectionSkipped(string cluster) => _ejectionsSkipped.Add(1, new KeyValuePair<string, object?>("cluster", cluster));

    public void ConfigReloaded(bool applied)
    {
        if (_configReloads.Enabled)
        {
            _configReloads.Add(1, new KeyValuePair<string, object?>("result", applied ? "applied" : "rejected"));
        }
    }

    public void AdmissionAdmitted(ConcurrencyLimit limit, TimeSpan waited)
    {
        if (_admitted.Enabled)
        {
            _admitted.Add(1, Tags(limit));
        }

        if (_queueWait.Enabled)
        {
            _queueWait.Record(waited.TotalSeconds, Tags(limit));
        }
    }

    public void AdmissionRejected(ConcurrencyLimit limit, AdmissionRejection reason, TimeSpan waited)
    {
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
        if (_rejected.Enabled)
        {
            _rejected.Add(1, new TagList { { "limit", "upgrade" }, { "name", "global" }, { "reason", AdmissionRejection.UpgradeRate.ToTag() } });
        }
    }

    public void ConnectionDelayed(TimeSpan waited)
    {
        _connectionsDelayed.Add(1);
        if (_connectionWait.Enabled)
        {
            _connectionWait.Record(waited.TotalSeconds);
        }
    }

    public void ConnectionAdmissionClosed(string reason, TimeSpan waited)
    {
        _connectionsClosed.Add(1, new KeyValuePair<string, object?>("reason", reason));
        if (_connectionWait.Enabled)
        {
            _connectionWait.Record(waited.TotalSeconds);
        }
    }

    private static TagList Tags(ConcurrencyLimit limit) => new() { { "limit", limit.Kind }, { "name", limit.Name } };

    /// <summary>The admission limits whose queues the gauges report; set once by <see cref="AdmissionLimits"/>.</summary>
    public void ObserveAdmissionLimits(AdmissionLimits limits) => _admissionLimits = limits;

    private IEnumerable<Measurement<long>> ObserveLimits(Func<ConcurrencyLimit, long> value)
        => _admissionLimits is { } limits ? limits.All().Select(l => new Measurement<long>(value(l), Tags(l))) : [];
}
