using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;
using YarpGateway.Telemetry;

namespace YarpGateway.Resilience;

/// <summary>
/// Resilience's instruments: attempts, retries and their budget, timeouts, forwarding errors, outlier
/// ejection. Every configured cluster's series that the alert rules and dashboard read start at 0
/// (retries by reason, exhausted budget, timeouts by kind, destination-side errors, ejections and
/// reactivations; those two are counted by destination and exported by cluster, see <c>MetricsExport.GatewayExcludedTags</c>), at start and for the clusters a reload adds (<see cref="IKnownSeries"/>).
/// Attempts, one or more per proxied request, are an interlocked count per cluster read at each scrape (an
/// observable counter), not a measurement with its tags per request.
/// </summary>
internal sealed class ResilienceMetrics : IKnownSeries, IConfigChangeListener
{
    private static readonly string[] RetryReasons = ["status_502", "status_503", "status_504", "connect_failure", "connect_timeout", "connection_reset", "try_timeout"];
    private static readonly string[] TimeoutKinds = ["connect", "try", "route", "activity"];

    private static readonly string[] DestinationErrors = Enum.GetValues<ForwarderError>()
        .Where(e => e != ForwarderError.None && !ProxyErrorLog.IsClientSide(e))
        .Select(ProxyErrorLog.TagOf)
        .Distinct(StringComparer.Ordinal)
        .ToArray();

    private readonly ConcurrentDictionary<string, StrongBox<long>> _attempts = new(StringComparer.Ordinal);
    private readonly Counter<long> _retries;
    private readonly Counter<long> _budgetExhausted;
    private readonly Counter<long> _timeouts;
    private readonly Counter<long> _proxyErrors;
    private readonly Counter<long> _ejections;
    private readonly Counter<long> _reactivations;
    private readonly Counter<long> _ejectionsSkipped;
    private volatile IReadOnlyList<ClusterConfig> _clusters = [];

    public ResilienceMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(GatewayMeter.Name);
        meter.CreateObservableCounter("gateway.proxy.attempts", ObserveAttempts, unit: "{attempt}", description: "Attempts to send a request to a destination, first tries and retries, by cluster.");
        _retries = meter.CreateCounter<long>("gateway.proxy.retries", unit: "{retry}", description: "Retries, by cluster and reason (status_502/503/504, connect_failure, connect_timeout, connection_reset, try_timeout).");
        _budgetExhausted = meter.CreateCounter<long>("gateway.proxy.retry_budget.exhausted", unit: "{retry}", description: "Retries not made because the cluster's retry budget was spent.");
        _timeouts = meter.CreateCounter<long>("gateway.proxy.timeouts", unit: "{timeout}", description: "Requests answered 504 by a timeout, by cluster and kind (connect, try, route, activity).");
        _proxyErrors = meter.CreateCounter<long>("gateway.proxy.errors", unit: "{request}", description: "Proxied requests that ended in a forwarding error, after retries, by cluster and error (YARP's ForwarderError in snake case: request, response_headers, no_available_destinations, request_canceled, upgrade_request_client, ...; request_timed_out for every 504 timeout).");
        _ejections = meter.CreateCounter<long>("gateway.outlier.ejections", unit: "{ejection}", description: "Destinations ejected by outlier ejection, by cluster (the log line names the destination).");
        _reactivations = meter.CreateCounter<long>("gateway.outlier.reactivations", unit: "{reactivation}", description: "Ejected destinations reactivated, by cluster.");
        _ejectionsSkipped = meter.CreateCounter<long>("gateway.outlier.ejections_skipped", unit: "{ejection}", description: "Ejections not made because MaxEjectedPercent of the cluster was already ejected.");
    }

    public void Attempt(string? cluster) => Interlocked.Increment(ref AttemptsOf(cluster).Value);

    // A cluster's count outlives its removal, as a counter's series would; the key of no cluster is empty (cluster ids are not).
    private StrongBox<long> AttemptsOf(string? cluster)
        => _attempts.GetOrAdd(cluster ?? string.Empty, static _ => new StrongBox<long>());

    private IEnumerable<Measurement<long>> ObserveAttempts()
    {
        foreach (var (cluster, count) in _attempts)
        {
            yield return new Measurement<long>(Interlocked.Read(ref count.Value), Cluster(cluster.Length == 0 ? null : cluster));
        }
    }

    public void Retry(string? cluster, string reason) => _retries.Add(1, new TagList { { "cluster", cluster }, { "reason", reason } });

    public void RetryBudgetExhausted(string? cluster) => _budgetExhausted.Add(1, Cluster(cluster));

    public void Timeout(string cluster, string kind) => _timeouts.Add(1, new TagList { { "cluster", cluster }, { "kind", kind } });

    public void ProxyError(string cluster, string error) => _proxyErrors.Add(1, new TagList { { "cluster", cluster }, { "error", error } });

    public void Ejected(string cluster, string destination) => _ejections.Add(1, new TagList { { "cluster", cluster }, { "destination", destination } });

    public void Reactivated(string cluster, string destination) => _reactivations.Add(1, new TagList { { "cluster", cluster }, { "destination", destination } });

    public void EjectionSkipped(string cluster) => _ejectionsSkipped.Add(1, Cluster(cluster));

    /// <summary>Zero series published per instrument over the process's life, whole clusters at a time (<see cref="ZeroSeriesBudget"/>).</summary>
    internal const int MaxZeroSeries = ZeroSeriesBudget.DefaultMax;

    private readonly ZeroSeriesBudget _clusterZeros = new();
    private readonly ZeroSeriesBudget _retryZeros = new();
    private readonly ZeroSeriesBudget _timeoutZeros = new();
    private readonly ZeroSeriesBudget _errorZeros = new();

    public void Publish()
    {
        foreach (var cluster in _clusters)
        {
            var id = cluster.ClusterId;
            if (_clusterZeros.TryReserve(id, 1))
            {
                AttemptsOf(id); // its series, at 0
                _budgetExhausted.Add(0, Cluster(id));
                _ejectionsSkipped.Add(0, Cluster(id));
                _ejections.Add(0, Cluster(id));
                _reactivations.Add(0, Cluster(id));
            }

            if (_retryZeros.TryReserve(id, RetryReasons.Length))
            {
                foreach (var reason in RetryReasons)
                {
                    _retries.Add(0, new TagList { { "cluster", id }, { "reason", reason } });
                }
            }

            if (_timeoutZeros.TryReserve(id, TimeoutKinds.Length))
            {
                foreach (var kind in TimeoutKinds)
                {
                    _timeouts.Add(0, new TagList { { "cluster", id }, { "kind", kind } });
                }
            }

            if (_errorZeros.TryReserve(id, DestinationErrors.Length))
            {
                foreach (var error in DestinationErrors)
                {
                    _proxyErrors.Add(0, new TagList { { "cluster", id }, { "error", error } });
                }
            }

        }
    }

    public void ConfigurationApplied(IReadOnlyList<IProxyConfig> proxyConfigs)
    {
        _clusters = proxyConfigs.SelectMany(c => c.Clusters).ToArray();
        Publish(); // the reload's new clusters; before the host starts, KnownSeriesPublisher repeats it
    }

    public void ConfigurationLoaded(IReadOnlyList<IProxyConfig> proxyConfigs)
    {
    }

    public void ConfigurationLoadingFailed(IProxyConfigProvider configProvider, Exception exception)
    {
    }

    public void ConfigurationApplyingFailed(IReadOnlyList<IProxyConfig> proxyConfigs, Exception exception)
    {
    }

    private static KeyValuePair<string, object?> Cluster(string? cluster) => new("cluster", cluster);
}
