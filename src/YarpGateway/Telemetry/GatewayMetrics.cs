using System.Diagnostics;
using System.Diagnostics.Metrics;
using YarpGateway.Admission;
using YarpGateway.WebSockets;

namespace YarpGateway.Telemetry;

/// <summary>
/// Every instrument the gateway publishes, created once from <see cref="IMeterFactory"/>.
/// Features report through methods here so that names, units and tags live in one place.
/// Tags carry only configured names (route and cluster ids) and fixed words, never request data.
/// </summary>
internal sealed class GatewayMetrics
{
    public const string MeterName = GatewayMeter.Name;

    private static readonly double[] WaitBuckets = [0, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
    private static readonly double[] SchedulerBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
    private static readonly double[] RequestBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    private readonly Counter<long> _configReloads;
    private readonly Counter<long> _admitted;
    private readonly Counter<long> _rejected;
    private readonly Histogram<double> _queueWait;
    private readonly Counter<long> _connectionsDelayed;
    private readonly Counter<long> _connectionsClosed;
    private readonly Histogram<double> _connectionWait;
    private readonly Counter<long> _firstRequestExpired;

    private readonly Counter<long> _attempts;
    private readonly Counter<long> _retries;
    private readonly Counter<long> _budgetExhausted;
    private readonly Counter<long> _timeouts;
    private readonly Counter<long> _proxyErrors;
    private readonly Counter<long> _ejections;
    private readonly Counter<long> _reactivations;
    private readonly Counter<long> _ejectionsSkipped;
    private readonly Histogram<double> _requestDuration;
    private readonly Counter<long> _wsDroppedMessages;
    private readonly Counter<long> _wsDroppedBytes;
    private readonly Counter<long> _wsEvictions;
    private volatile AdmissionLimits? _admissionLimits;
    private volatile Yarp.ReverseProxy.IProxyStateLookup? _proxyState;
    private long _admissionRejectedTotal;

    public GatewayMetrics(IMeterFactory meterFactory, TrafficCounters traffic, WebSocketCounters webSockets)
    {
        var meter = meterFactory.Create(MeterName);

        // Scheduler: the thread pool's queueing delay and backlog.
        SchedulerDelay = meter.CreateHistogram(
            "gateway.scheduler.delay", unit: "s",
            description: "Time a work item queued to the thread pool waited before it ran (measured by a probe every 100 ms).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SchedulerBuckets });
        meter.CreateObservableGauge("gateway.scheduler.pending_work_items", () => ThreadPool.PendingWorkItemCount, unit: "{work_item}", description: "Work items queued to the thread pool and not yet started.");
        meter.CreateObservableGauge("gateway.scheduler.threads", () => ThreadPool.ThreadCount, unit: "{thread}", description: "Thread-pool threads.");

        // Churn on the proxy endpoint: rate() of the counters gives accepts/s and closes/s.
        meter.CreateObservableCounter("gateway.connections.accepted", () => traffic.AcceptedConnections, unit: "{connection}", description: "Connections accepted on the proxy endpoint.");
        meter.CreateObservableCounter("gateway.connections.closed", () => traffic.ClosedConnections, unit: "{connection}", description: "Connections on the proxy endpoint that have closed.");
        meter.CreateObservableCounter("gateway.connections.abandoned", () => traffic.AbandonedConnections, unit: "{connection}", description: "Connections let go because Kestrel did not complete them within 1 s of their transport closing (e.g. HTTP/2 stream floods).");
        meter.CreateObservableCounter("gateway.connections.reset_floods", () => traffic.ResetFloodsClosed, unit: "{connection}", description: "HTTP/2 connections closed for resetting more streams than Gateway:Http2:MaxStreamResets allows (rapid reset).");
        meter.CreateObservableGauge("gateway.connections.active", () => traffic.OpenConnections, unit: "{connection}", description: "Open connections on the proxy endpoint.");
        meter.CreateObservableGauge("gateway.connections.upgraded", () => traffic.UpgradedConnections, unit: "{connection}", description: "Upgraded (WebSocket) connections being proxied.");
        meter.CreateObservableGauge("gateway.proxy.requests.in_flight", () => traffic.InFlightRequests, unit: "{request}", description: "Proxied requests in flight.");
        meter.CreateObservableGauge("gateway.proxy.destination.in_flight", ObserveDestinations, unit: "{request}", description: "Requests in flight to each destination.");
        meter.CreateObservableGauge("gateway.cluster.available_destinations", ObserveAvailable, unit: "{destination}", description: "Destinations of each cluster that are up (not marked unhealthy by active or passive health checks).");
        _requestDuration = meter.CreateHistogram(
            "gateway.proxy.request.duration", unit: "s",
            description: "Proxied request duration by route, cluster, destination and status class (client_closed: the client left before a response started), admission and retries included; upgraded (WebSocket) requests are not recorded here.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = RequestBuckets });
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
            description: "New proxy connections closed by connection admission, by reason (wait_timeout, queue_full, client_gone, shutdown).");
        _firstRequestExpired = meter.CreateCounter<long>(
            "gateway.connection_admission.first_request_expired", unit: "{connection}",
            description: "New proxy connections still in their first request after MaxFirstRequestTime: their first-request slot was freed, the connection kept (slow clients, or slow first responses).");
        _connectionWait = meter.CreateHistogram(
            "gateway.connection_admission.wait", unit: "s",
            description: "Time delayed or closed connections waited for connection admission.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = WaitBuckets });

        _attempts = meter.CreateCounter<long>("gateway.proxy.attempts", unit: "{attempt}", description: "Attempts to send a request to a destination, first tries and retries, by cluster.");
        _retries = meter.CreateCounter<long>("gateway.proxy.retries", unit: "{retry}", description: "Retries, by cluster and reason (status_502/503/504, connect_failure, connect_timeout, connection_reset, try_timeout).");
        _budgetExhausted = meter.CreateCounter<long>("gateway.proxy.retry_budget.exhausted", unit: "{retry}", description: "Retries not made because the cluster's retry budget was spent.");
        _timeouts = meter.CreateCounter<long>("gateway.proxy.timeouts", unit: "{timeout}", description: "Requests answered 504 by a timeout, by cluster and kind (connect, try, route, activity).");
        _proxyErrors = meter.CreateCounter<long>("gateway.proxy.errors", unit: "{request}", description: "Proxied requests that ended in a forwarding error, after retries, by cluster and error (YARP's ForwarderError in snake case: request, response_headers, no_available_destinations, request_canceled, upgrade_request_client, ...; request_timed_out for every 504 timeout).");
        _ejections = meter.CreateCounter<long>("gateway.outlier.ejections", unit: "{ejection}", description: "Destinations ejected by outlier ejection, by cluster and destination.");
        _reactivations = meter.CreateCounter<long>("gateway.outlier.reactivations", unit: "{reactivation}", description: "Ejected destinations reactivated, by cluster and destination.");
        _ejectionsSkipped = meter.CreateCounter<long>("gateway.outlier.ejections_skipped", unit: "{ejection}", description: "Ejections not made because MaxEjectedPercent of the cluster was already ejected.");

        // WebSockets: downstream is backend to client, upstream client to backend.
        meter.CreateObservableCounter(
            "gateway.websocket.bytes",
            () => new[] { Direction(webSockets.DownstreamBytes, "downstream"), Direction(webSockets.UpstreamBytes, "upstream") },
            unit: "By", description: "Bytes relayed through proxied WebSockets, by direction (downstream: backend to client).");
        meter.CreateObservableCounter(
            "gateway.websocket.messages",
            () => new[] { Direction(webSockets.DownstreamMessages, "downstream"), Direction(webSockets.UpstreamMessages, "upstream") },
            unit: "{message}", description: "Whole data messages relayed through proxied WebSockets, by direction (dropped ones not included).");
        meter.CreateObservableGauge("gateway.websocket.buffered", () => webSockets.BufferedBytes, unit: "By", description: "Bytes waiting in the outbound buffers of all proxied WebSockets (each is capped by OutboundBufferBytes).");
        meter.CreateObservableGauge("gateway.websocket.open", () => webSockets.Open, unit: "{connection}", description: "WebSockets upgraded and being relayed.");
        _wsDroppedMessages = meter.CreateCounter<long>("gateway.websocket.dropped.messages", unit: "{message}", description: "Data messages dropped for slow clients (DropMessages policy), by route.");
        _wsDroppedBytes = meter.CreateCounter<long>("gateway.websocket.dropped.bytes", unit: "By", description: "Bytes of dropped data messages (DropMessages policy), by route.");
        _wsEvictions = meter.CreateCounter<long>("gateway.websocket.evictions", unit: "{connection}", description: "WebSockets the gateway closed itself, by route and reason (drop_limit, buffer_full, write_timeout, drain, protocol_error, close_timeout).");
    }

    public void WebSocketDropped(string route, int messages, long bytes)
    {
        var tag = new KeyValuePair<string, object?>("route", route);
        if (messages > 0)
        {
            _wsDroppedMessages.Add(messages, tag);
        }

        _wsDroppedBytes.Add(bytes, tag);
    }

    public void WebSocketEvicted(string route, EvictionReason reason)
        => _wsEvictions.Add(1, new TagList { { "route", route }, { "reason", reason.ToTag() } });

    private static Measurement<long> Direction(long value, string direction) => new(value, new KeyValuePair<string, object?>("direction", direction));

    public void ProxyAttempt(string? cluster) => _attempts.Add(1, new KeyValuePair<string, object?>("cluster", cluster));

    public void Retry(string? cluster, string reason) => _retries.Add(1, new TagList { { "cluster", cluster }, { "reason", reason } });

    public void RetryBudgetExhausted(string? cluster) => _budgetExhausted.Add(1, new KeyValuePair<string, object?>("cluster", cluster));

    public void Timeout(string cluster, string kind) => _timeouts.Add(1, new TagList { { "cluster", cluster }, { "kind", kind } });

    public void ProxyError(string cluster, string error) => _proxyErrors.Add(1, new TagList { { "cluster", cluster }, { "error", error } });

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

    /// <summary>The scheduler probe records into this.</summary>
    public Histogram<double> SchedulerDelay { get; }

    /// <summary>Admission rejections since start, for the saturation log.</summary>
    public long AdmissionRejectedTotal => Interlocked.Read(ref _admissionRejectedTotal);

    /// <summary>Records a finished request; <paramref name="clientGone"/>: the client left before any response started (<c>status_class="client_closed"</c>, nginx's 499).</summary>
    public void ProxyRequest(string route, string? cluster, string? destination, int status, bool clientGone, TimeSpan duration)
    {
        if (_requestDuration.Enabled)
        {
            _requestDuration.Record(duration.TotalSeconds, new TagList
            {
                { "route", route },
                { "cluster", cluster ?? "-" },
                { "destination", destination ?? "-" },
                { "status_class", clientGone ? "client_closed" : StatusClass(status) },
            });
        }
    }

    /// <summary>The proxy state whose destinations the in-flight gauge reports; set once at start-up.</summary>
    public void ObserveProxyState(Yarp.ReverseProxy.IProxyStateLookup proxyState) => _proxyState = proxyState;

    public void AdmissionRejected(ConcurrencyLimit limit, AdmissionRejection reason, TimeSpan waited)
    {
        Interlocked.Increment(ref _admissionRejectedTotal);
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
        Interlocked.Increment(ref _admissionRejectedTotal);
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

    public void ConnectionFirstRequestExpired() => _firstRequestExpired.Add(1);

    public void ConnectionAdmissionClosed(string reason, TimeSpan waited)
    {
        _connectionsClosed.Add(1, new KeyValuePair<string, object?>("reason", reason));
        if (_connectionWait.Enabled)
        {
            _connectionWait.Record(waited.TotalSeconds);
        }
    }

    private static string StatusClass(int status) => status switch
    {
        < 200 => "1xx",
        < 300 => "2xx",
        < 400 => "3xx",
        < 500 => "4xx",
        _ => "5xx",
    };

    private IEnumerable<Measurement<int>> ObserveDestinations()
    {
        if (_proxyState is not { } state)
        {
            yield break;
        }

        foreach (var cluster in state.GetClusters())
        {
            foreach (var destination in cluster.Destinations.Values)
            {
                yield return new Measurement<int>(destination.ConcurrentRequestCount, new TagList { { "cluster", cluster.ClusterId }, { "destination", destination.DestinationId } });
            }
        }
    }

    private IEnumerable<Measurement<int>> ObserveAvailable()
    {
        if (_proxyState is not { } state)
        {
            yield break;
        }

        foreach (var cluster in state.GetClusters())
        {
            yield return new Measurement<int>(cluster.Destinations.Values.Count(Health.DestinationsHealthCheck.IsUp), new KeyValuePair<string, object?>("cluster", cluster.ClusterId));
        }
    }

    private static TagList Tags(ConcurrencyLimit limit) => new() { { "limit", limit.Kind }, { "name", limit.Name } };

    /// <summary>The admission limits whose queues the gauges report; set once by <see cref="AdmissionLimits"/>.</summary>
    public void ObserveAdmissionLimits(AdmissionLimits limits) => _admissionLimits = limits;

    private IEnumerable<Measurement<long>> ObserveLimits(Func<ConcurrencyLimit, long> value)
        => _admissionLimits is { } limits ? limits.All().Select(l => new Measurement<long>(value(l), Tags(l))) : [];
}
