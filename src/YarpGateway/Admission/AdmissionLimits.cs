using System.Collections.Concurrent;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Model;
using YarpGateway.Configuration;

namespace YarpGateway.Admission;

/// <summary>
/// The current concurrency limits: the global one (from <see cref="AdmissionOptions.Global"/>), one per
/// route and per cluster that names <c>MaxConcurrency</c> in its metadata, and for every other cluster
/// its share of the global one (<see cref="AdmissionOptions.ClusterShare"/>). A limit is kept across
/// reloads while its settings stay the same and replaced when they change. Looking up a route's or
/// cluster's limit is a dictionary read and a reference compare. Also the share of the global limit that requests still
/// receiving their bodies may hold (<see cref="AdmissionOptions.UploadShare"/>).
/// </summary>
internal sealed class AdmissionLimits : IConfigChangeListener, IDisposable
{
    /// <summary>The kind (the <c>limit</c> tag) of a cluster's share of the global limit.</summary>
    public const string ClusterShareKind = "cluster_share";

    /// <summary>The kind (the <c>limit</c> tag) of the share of the global limit that uploads under way may hold; its name is <c>global</c>.</summary>
    public const string UploadShareKind = "upload_share";

    private readonly ConcurrentDictionary<string, Entry> _routes = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, Entry> _clusters = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, ConcurrencyLimit> _shares = new(StringComparer.OrdinalIgnoreCase);
    private volatile int _clusterCount;
    private readonly ReloadableOptions<AdmissionOptions> _options;
    private readonly Lock _rebuildLock = new();
    private readonly AdmissionMetrics _metrics;
    private volatile ConcurrencyLimit? _global;
    private volatile ConcurrencyLimit? _uploadShare;

    public AdmissionLimits(ReloadableOptions<AdmissionOptions> options, AdmissionMetrics metrics)
    {
        metrics.Observe(this);
        _metrics = metrics;
        _options = options;
        _global = Created(CreateGlobal(options.Current, previous: null), previous: null);
        options.Changed += OnOptionsChanged;
    }

    private void OnOptionsChanged(AdmissionOptions options) => _global = Created(CreateGlobal(options, _global), _global);

    // A limit that came into force gets its rejection series at 0.
    private ConcurrencyLimit? Created(ConcurrencyLimit? limit, ConcurrencyLimit? previous)
    {
        if (limit is not null && !ReferenceEquals(limit, previous))
        {
            _metrics.LimitCreated(limit);
        }

        return limit;
    }

    /// <summary>The global limit, or null when <c>Gateway:Admission:Global:MaxConcurrency</c> is 0.</summary>
    public ConcurrencyLimit? Global => _global;

    public ConcurrencyLimit? ForRoute(RouteConfig route) => Get(_routes, "route", route.RouteId, route, route.Metadata);

    public ConcurrencyLimit? ForCluster(ClusterState cluster)
        => cluster.Model is { } model ? Get(_clusters, "cluster", cluster.ClusterId, model.Config, model.Config.Metadata) : null;

    /// <summary>
    /// The cluster's share of the global limit: a limit of <see cref="AdmissionOptions.ClusterShare"/> of its slots, for a
    /// cluster without a limit of its own (<see cref="ForCluster"/>), when there is a global limit and more than one cluster.
    /// Null otherwise, or when the share is 1. Ordinary requests take it at once or not at all (<see cref="ConcurrencyLimit.TryAcquireNow"/>:
    /// they already hold a global slot); WebSocket handshakes, which take it before their global slot, wait in its queue,
    /// the global limit's size and timeout.
    /// </summary>
    public ConcurrencyLimit? ShareFor(ClusterState cluster)
    {
        var share = _options.Current.ClusterShare;
        if (_clusterCount < 2 || _global is not { } global || share >= 1)
        {
            return null;
        }

        var slots = SlotsOf(global, share);
        if (_shares.TryGetValue(cluster.ClusterId, out var limit) && IsShareOf(limit, global, slots))
        {
            return limit;
        }

        lock (_rebuildLock)
        {
            if (!_shares.TryGetValue(cluster.ClusterId, out limit) || !IsShareOf(limit, global, slots))
            {
                var settings = new ConcurrencyLimitSettings(slots, global.Settings.MaxQueue, global.Settings.QueueTimeout);
                limit = Created(new ConcurrencyLimit(ClusterShareKind, cluster.ClusterId, settings), previous: null)!;
                _shares[cluster.ClusterId] = limit;
            }

            return limit;
        }
    }

    private static bool IsShareOf(ConcurrencyLimit share, ConcurrencyLimit global, int slots)
        => share.Settings.MaxConcurrency == slots && share.Settings.MaxQueue == global.Settings.MaxQueue && share.Settings.QueueTimeout == global.Settings.QueueTimeout;

    /// <summary>The slots a share (more than 0, under 1) of the global limit comes to: at least one.</summary>
    private static int SlotsOf(ConcurrencyLimit global, double share) => Math.Max(1, (int)Math.Ceiling(global.Settings.MaxConcurrency * share));

    /// <summary>A share of the global limit, which every request of its kind takes (no admitted count); only a cluster's share has a queue, for handshakes.</summary>
    public static bool IsShare(string kind) => kind is ClusterShareKind or UploadShareKind;

    /// <summary>
    /// The share of the global limit's slots that requests still receiving their bodies may hold
    /// (<see cref="AdmissionOptions.UploadShare"/>), with no queue; null without a global limit, or when the share is 1.
    /// </summary>
    public ConcurrencyLimit? UploadShare
    {
        get
        {
            var share = _options.Current.UploadShare;
            if (_global is not { } global || share >= 1)
            {
                return null;
            }

            var slots = SlotsOf(global, share);
            if (_uploadShare is { } current && current.Settings.MaxConcurrency == slots)
            {
                return current;
            }

            lock (_rebuildLock)
            {
                if (_uploadShare is not { } limit || limit.Settings.MaxConcurrency != slots)
                {
                    limit = Created(new ConcurrencyLimit(UploadShareKind, "global", new ConcurrencyLimitSettings(slots, 0, global.Settings.QueueTimeout)), previous: null)!;
                    _uploadShare = limit;
                }

                return limit;
            }
        }
    }

    /// <summary>Every limit in force, for the queue gauges.</summary>
    public IEnumerable<ConcurrencyLimit> All()
    {
        if (_global is { } global)
        {
            yield return global;
        }

        foreach (var entry in _routes.Values.Concat(_clusters.Values))
        {
            if (entry.Limit is { } limit)
            {
                yield return limit;
            }
        }

        foreach (var share in _shares.Values)
        {
            yield return share;
        }

        if (UploadShare is { } uploads)
        {
            yield return uploads;
        }
    }

    private ConcurrencyLimit? Get(ConcurrentDictionary<string, Entry> entries, string kind, string id, object config, IReadOnlyDictionary<string, string>? metadata)
    {
        if (entries.TryGetValue(id, out var entry) && ReferenceEquals(entry.Config, config))
        {
            return entry.Limit;
        }

        // The route or cluster config changed (or is new): rare, so under a lock, so that concurrent
        // first requests share one limit instead of each creating its own.
        lock (_rebuildLock)
        {
            if (entries.TryGetValue(id, out entry) && ReferenceEquals(entry.Config, config))
            {
                return entry.Limit;
            }

            // Keep the limit if its settings did not change.
            var settings = ConcurrencyLimitSettings.FromMetadata(metadata, string.Empty, errors: null);
            var limit = settings is null ? null
                : entry?.Limit is { } current && current.Settings == settings ? current
                : Created(new ConcurrencyLimit(kind, id, settings), previous: null);
            entries[id] = new Entry(config, limit);
            return limit;
        }
    }

    private static ConcurrencyLimit? CreateGlobal(AdmissionOptions options, ConcurrencyLimit? previous)
    {
        var global = options.Global;
        if (global.MaxConcurrency <= 0 || global.MaxQueue < 0 || global.QueueTimeout <= TimeSpan.Zero)
        {
            return null;
        }

        var settings = new ConcurrencyLimitSettings(global.MaxConcurrency, global.MaxQueue, global.QueueTimeout);
        return previous?.Settings == settings ? previous : new ConcurrencyLimit("global", "global", settings);
    }

    // Routes and clusters that a reload removed stop showing in the gauges.
    public void ConfigurationApplied(IReadOnlyList<IProxyConfig> proxyConfigs)
    {
        Prune(_routes, proxyConfigs.SelectMany(c => c.Routes).Select(r => r.RouteId));
        Prune(_clusters, proxyConfigs.SelectMany(c => c.Clusters).Select(c => c.ClusterId));
        Prune(_shares, proxyConfigs.SelectMany(c => c.Clusters).Select(c => c.ClusterId));
        _clusterCount = proxyConfigs.Sum(c => c.Clusters.Count);
    }

    private static void Prune<T>(ConcurrentDictionary<string, T> entries, IEnumerable<string> live)
    {
        var keep = new HashSet<string>(live, StringComparer.OrdinalIgnoreCase);
        foreach (var id in entries.Keys)
        {
            if (!keep.Contains(id))
            {
                entries.TryRemove(id, out _);
            }
        }
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

    public void Dispose() => _options.Changed -= OnOptionsChanged;

    private sealed record Entry(object Config, ConcurrencyLimit? Limit);
}
