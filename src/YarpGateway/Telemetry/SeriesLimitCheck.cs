using Yarp.ReverseProxy.Configuration;

namespace YarpGateway.Telemetry;

/// <summary>
/// Says in the log when the proxy configuration has more routes, clusters or destinations than each metric keeps
/// series (<see cref="TelemetryOptions.MaxSeriesPerMetric"/>, read at start): the metrics labelled by them then
/// fold the rest into one <c>otel_metric_overflow="true"</c> series, and a dashboard by route or cluster quietly
/// misses some. Logged when a kind goes over the limit, and once when all are back under it; not on every reload.
/// YARP hands its listeners the configuration with destinations resolved, so a destination discovered from DNS counts
/// once per pod, and a change in the pods is a new configuration applied (tried: 60 clusters of one name resolving to
/// two addresses were counted as 120 destinations). Fewer routes can reach the limit too, with the other labels (method,
/// status code): the alert <c>GatewayMetricSeriesOverflow</c> sees what was really exported.
/// </summary>
internal sealed partial class SeriesLimitCheck(MetricSeriesLimit limit, ILogger<SeriesLimitCheck> logger) : IConfigChangeListener
{
    private readonly int _maxSeries = limit.MaxSeries;

    private readonly Lock _lock = new();
    private string? _over; // the kinds over the limit last logged, e.g. "clusters and destinations"; null while none

    public void ConfigurationApplied(IReadOnlyList<IProxyConfig> proxyConfigs)
    {
        int routes = 0, clusters = 0, destinations = 0;
        foreach (var config in proxyConfigs)
        {
            routes += config.Routes.Count;
            clusters += config.Clusters.Count;
            foreach (var cluster in config.Clusters)
            {
                destinations += cluster.Destinations?.Count ?? 0;
            }
        }

        var over = Kinds(routes > _maxSeries, clusters > _maxSeries, destinations > _maxSeries);
        lock (_lock)
        {
            if (over == _over)
            {
                return;
            }

            if (over is not null)
            {
                Log.OverLimit(logger, routes, clusters, destinations, over, _maxSeries);
            }
            else
            {
                Log.UnderLimit(logger, routes, clusters, destinations, _maxSeries);
            }

            _over = over;
        }
    }

    public void ConfigurationApplyingFailed(IReadOnlyList<IProxyConfig> proxyConfigs, Exception exception)
    {
    }

    public void ConfigurationLoaded(IReadOnlyList<IProxyConfig> proxyConfigs)
    {
    }

    public void ConfigurationLoadingFailed(IProxyConfigProvider configProvider, Exception exception)
    {
    }

    /// <summary>The kinds over the limit in words ("clusters and destinations"), or null for none.</summary>
    internal static string? Kinds(bool routes, bool clusters, bool destinations)
    {
        List<string> kinds = [];
        if (routes)
        {
            kinds.Add("routes");
        }

        if (clusters)
        {
            kinds.Add("clusters");
        }

        if (destinations)
        {
            kinds.Add("destinations");
        }

        return kinds.Count switch
        {
            0 => null,
            1 => kinds[0],
            _ => string.Join(", ", kinds[..^1]) + " and " + kinds[^1],
        };
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "The proxy configuration has {Routes} routes, {Clusters} clusters and {Destinations} destinations: more {Kinds} than the {MaxSeries} series each metric keeps (Gateway:Telemetry:MaxSeriesPerMetric). Metrics labelled by them fold the rest into one series labelled otel_metric_overflow=\"true\", which does not say whose they are. Raise the limit (each such metric sets aside about 72 bytes per series) and restart.", EventName = "MetricSeriesLimitExceeded")]
        public static partial void OverLimit(ILogger logger, int routes, int clusters, int destinations, string kinds, int maxSeries);

        [LoggerMessage(2, LogLevel.Information, "The proxy configuration has {Routes} routes, {Clusters} clusters and {Destinations} destinations: within the {MaxSeries} series each metric keeps again. Series already folded into otel_metric_overflow stay there until the gateway restarts.", EventName = "MetricSeriesLimitMet")]
        public static partial void UnderLimit(ILogger logger, int routes, int clusters, int destinations, int maxSeries);
    }
}
