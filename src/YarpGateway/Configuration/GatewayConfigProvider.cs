using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Configuration;

namespace YarpGateway.Configuration;

/// <summary>
/// Feeds YARP the <c>ReverseProxy</c> section, and only ever a configuration that passed validation.
/// On start-up an invalid configuration stops the gateway with every error listed. On reload an
/// invalid one (a file that no longer parses, a bad value, a YARP validation error, or a change that
/// would remove every route) is logged once, counted, and ignored: the last good one keeps serving.
/// </summary>
internal sealed partial class GatewayConfigProvider : IProxyConfigProvider, IDisposable
{
    private readonly IConfiguration _configuration;
    private readonly SectionCopies _copies;
    private readonly GatewayConfigValidator _validator;
    private readonly ConfigMetrics _metrics;
    private readonly ILogger<GatewayConfigProvider> _logger;
    private readonly SemaphoreSlim _reloadGate = new(1, 1);
    private readonly CancellationTokenSource _disposed = new(); // cancelled, never disposed: reloads may still hold its token
    private volatile ProxyConfigSnapshot? _current;
    private IReadOnlyDictionary<string, string> _currentKeys = new Dictionary<string, string>(); // the ReverseProxy keys _current was read from
    private string _currentSnapshot = string.Empty; // the same, as ConfigChanges.Snapshot gives them
    private IDisposable? _subscription;
    private string? _lastRejection;
    private volatile IReadOnlyList<ConfigError> _refusedAtStart = []; // of the rejection now, what start-up would refuse too

    public GatewayConfigProvider(IConfiguration configuration, SectionCopies copies, GatewayConfigValidator validator, ConfigMetrics metrics, ILogger<GatewayConfigProvider> logger)
    {
        _configuration = configuration;
        _copies = copies;
        _validator = validator;
        _metrics = metrics;
        _logger = logger;
    }

    /// <summary>Reads and validates the configuration at start-up, before YARP reads it.</summary>
    /// <exception cref="GatewayConfigurationException">Lists every error found.</exception>
    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        var copy = _copies.Of(ProxyConfigReader.SectionName);
        var read = ProxyConfigReader.Read(copy.Configuration);
        var errors = await _validator.ValidateAsync(read, cancellationToken);
        if (errors.Count > 0)
        {
            throw new GatewayConfigurationException(ConfigSourceLocator.WithFiles(_configuration, errors));
        }

        _current = new ProxyConfigSnapshot(read.Routes, read.Clusters, revision: 1);
        _currentKeys = copy.Keys;
        _currentSnapshot = copy.Snapshot;
        Log.Loaded(_logger, read.Routes.Count, read.Clusters.Count);
        if (read.Routes.Count == 0)
        {
            Log.NoRoutes(_logger);
        }

        _subscription = ChangeToken.OnChange(_configuration.GetReloadToken, OnConfigurationChanged);
        if (_configuration is IConfigurationRoot root
            && root.Providers.OfType<LastGoodJsonConfigurationSource.Provider>().Where(file => file.WatchUnavailable is not null).ToList() is [var first, ..] unwatched)
        {
            var files = string.Join(", ", unwatched.Select(file => file.ExistingFilePath).OfType<string>());
            Log.NotWatched(_logger, files.Length > 0 ? files : "the configuration files", first.WatchUnavailable!, first.CheckInterval);
        }
    }

    /// <summary>The revision serving now (1 at start, one more per applied reload).</summary>
    public long Revision => _current?.Revision ?? 0;

    /// <summary>
    /// The revision of <paramref name="applied"/>, a configuration YARP reports applied, if it is the
    /// latest one handed to YARP; null for an older one (a newer reload was handed over meanwhile). YARP
    /// wraps what it applies, keeping the routes list: that list is what identifies a revision.
    /// </summary>
    public long? RevisionOf(IProxyConfig applied)
        => _current is { } current && (ReferenceEquals(applied, current) || ReferenceEquals(applied.Routes, current.Routes)) ? current.Revision : null;

    /// <summary>Why the configuration on disk is rejected now, or null when it is the one serving.</summary>
    public string? RejectedReason => _lastRejection;

    /// <summary>
    /// Of the configuration on disk that is rejected now, the errors start-up would refuse as well, with the file that
    /// set each; empty when it is the one serving, or when start-up would take it (a configuration with no routes,
    /// which a reload refuses while routes are serving).
    /// </summary>
    public IReadOnlyList<ConfigError> RefusedAtStart => _refusedAtStart;

    public IProxyConfig GetConfig()
        => _current ?? throw new InvalidOperationException($"{nameof(InitializeAsync)} must complete before YARP reads the configuration; UseGatewayAsync does this.");

    private void OnConfigurationChanged() => _ = ReloadAsync(_disposed.Token);

    /// <summary>
    /// Hands YARP the configuration serving now once more, unchanged (a new snapshot of the same revision), for a gateway
    /// setting that YARP reads only while it applies a configuration: a cluster's client is built with
    /// <c>Gateway:Resilience</c>'s connect timeout, and destinations are resolved through DNS discovery then. YARP applies
    /// it as it would an edit: what changed is rebuilt, the rest (clusters' health, affinity, in-flight requests) kept.
    /// </summary>
    public void Reapply() => _ = ReapplyAsync(_disposed.Token);

    internal async Task ReapplyAsync(CancellationToken cancellationToken)
    {
        if (!await EnterGateAsync(cancellationToken))
        {
            return;
        }

        try
        {
            if (_current is { } current)
            {
                _current = new ProxyConfigSnapshot(current.Routes, current.Clusters, current.Revision);
                current.SignalChanged();
            }
        }
        finally
        {
            _reloadGate.Release();
        }
    }

    /// <summary>Waits for the gate reloads and reapplies take in turn; false when the provider is being disposed.</summary>
    private async Task<bool> EnterGateAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _reloadGate.WaitAsync(cancellationToken);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    internal async Task ReloadAsync(CancellationToken cancellationToken)
    {
        if (!await EnterGateAsync(cancellationToken))
        {
            return;
        }

        try
        {
            var current = _current!;
            var errors = ConfigSourceLocator.FindBrokenFiles(_configuration);
            ProxyConfigReadResult? read = null;
            IReadOnlyDictionary<string, string>? keys = null;
            string? snapshot = null;
            if (errors.Count == 0)
            {
                // The section is read once into a copy, which is read, listed and compared: a walk of the configuration
                // was most of a reload's cost (SectionCopy). A file read again meanwhile (SIGHUP reads each file in turn,
                // each read starts a reload, and the file watcher may read the same file too) could mix old and new: then
                // the copy is compared with a second one, and made again if they differ. Before, a route added with a
                // SIGHUP was logged as "only the case of a key", and the next change's line named it again.
                for (var attempt = 1; ; attempt++)
                {
                    var copy = _copies.Of(ProxyConfigReader.SectionName);
                    snapshot = copy.Snapshot;
                    if (snapshot == _currentSnapshot)
                    {
                        // Nothing under ReverseProxy changed: an edit of another section, a second change event of one
                        // save, or SIGHUP's reads (one reload per file, and its own). Nothing to read or validate: with
                        // 3,000 routes each such reload cost about a second of CPU, and a SIGHUP that changed nothing 3.5 s.
                        _lastRejection = null;
                        _refusedAtStart = [];
                        return;
                    }

                    keys = copy.Keys;
                    read = ProxyConfigReader.Read(copy.Configuration);
                    if (copy.Whole || SectionCopy.SnapshotOf(_configuration, ProxyConfigReader.SectionName) == snapshot)
                    {
                        break;
                    }

                    if (attempt == 3)
                    {
                        return; // still changing: the reload the last read started waits at the gate
                    }
                }

                errors = await _validator.ValidateAsync(read, cancellationToken);
                if (errors.Count == 0 && read.Routes.Count == 0 && current.Routes.Count > 0)
                {
                    ConfigError[] noRoutes = [new ConfigError(ProxyConfigReader.SectionName + ":Routes",
                        $"the new configuration has no routes where {current.Routes.Count} were serving; refusing to apply it. Remove routes while keeping at least one, or restart the gateway to run with none.")];
                    Reject(ConfigSourceLocator.WithFiles(_configuration, noRoutes), current.Revision, refusedAtStart: false);
                    return;
                }
            }

            if (errors.Count > 0)
            {
                Reject(ConfigSourceLocator.WithFiles(_configuration, errors), current.Revision, refusedAtStart: true);
                return;
            }

            _lastRejection = null;
            _refusedAtStart = [];
            if (current.HasSameContent(read!))
            {
                _currentKeys = keys!; // keys that change nothing YARP reads (a null written out, say): not read again
                _currentSnapshot = snapshot!;
                return;
            }

            var next = new ProxyConfigSnapshot(read!.Routes, read.Clusters, current.Revision + 1);
            var changes = ConfigChanges.Describe(_currentKeys, keys!, ConfigChanges.ValuesExceptSecrets);
            _current = next;
            _currentKeys = keys!;
            _currentSnapshot = snapshot!;
            current.SignalChanged();
            Log.Reloaded(_logger, next.Revision, next.Routes.Count, next.Clusters.Count, changes.Length > 0 ? changes : ConfigChanges.OnlyCase);
            _metrics.Reloaded(applied: true); // after the line: whoever sees the count finds it
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            // A reload must never take the gateway down; the last good configuration keeps serving.
            Log.ReloadFailed(_logger, ex);
            _metrics.Reloaded(applied: false);
        }
        finally
        {
            _reloadGate.Release();
        }
    }

    private void Reject(IReadOnlyList<ConfigError> errors, long servingRevision, bool refusedAtStart)
    {
        var description = GatewayConfigurationException.Describe(errors);
        _refusedAtStart = refusedAtStart ? errors : [];

        // A file save often raises several change events; report each distinct problem once.
        if (string.Equals(description, _lastRejection, StringComparison.Ordinal))
        {
            return;
        }

        _lastRejection = description;
        Log.ReloadRejected(_logger, servingRevision, description);
        _metrics.Reloaded(applied: false);
    }

    public void Dispose()
    {
        // The host may dispose its services twice (RunAsync, then the caller's await using).
        if (Interlocked.Exchange(ref _subscription, null) is { } subscription)
        {
            subscription.Dispose();
            _disposed.Cancel();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Proxy configuration loaded: {RouteCount} routes, {ClusterCount} clusters.", EventName = "ConfigLoaded")]
        public static partial void Loaded(ILogger logger, int routeCount, int clusterCount);

        [LoggerMessage(2, LogLevel.Warning, "The proxy configuration has no routes: every request on the proxy endpoint will get 404. Add routes under ReverseProxy:Routes.", EventName = "NoRoutes")]
        public static partial void NoRoutes(ILogger logger);

        [LoggerMessage(3, LogLevel.Information, "Proxy configuration reloaded: revision {Revision}, {RouteCount} routes, {ClusterCount} clusters. Changed: {Changes}.", EventName = "ConfigReloaded")]
        public static partial void Reloaded(ILogger logger, long revision, int routeCount, int clusterCount, string changes);

        [LoggerMessage(4, LogLevel.Error, "Proxy configuration reload rejected; revision {Revision} keeps serving. {Errors}", EventName = "ConfigReloadRejected")]
        public static partial void ReloadRejected(ILogger logger, long revision, string errors);

        [LoggerMessage(5, LogLevel.Error, "Proxy configuration reload failed unexpectedly; the last good configuration keeps serving.", EventName = "ConfigReloadFailed")]
        public static partial void ReloadFailed(ILogger logger, Exception exception);

        [LoggerMessage(6, LogLevel.Warning, "Changes to {Files} are not watched ({Reason}); the files are checked every {Interval} instead, so a saved edit takes up to that long to apply (SIGHUP applies it at once). On Linux, raise fs.inotify.max_user_instances on the node.", EventName = "ConfigFileNotWatched")]
        public static partial void NotWatched(ILogger logger, string files, string reason, TimeSpan interval);
    }
}
