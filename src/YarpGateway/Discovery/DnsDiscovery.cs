using System.Collections.Concurrent;
using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.ServiceDiscovery;
using YarpGateway.Configuration;
using YarpGateway.Telemetry;

namespace YarpGateway.Discovery;

/// <summary>
/// Per-pod destinations from DNS: wraps YARP's own <c>DnsDestinationResolver</c> (given as
/// <paramref name="dns"/>) so that, in a cluster where discovery is on (<see cref="DiscoveryRule.IsOn"/>),
/// a destination with a host name becomes one destination per address its name resolves to (a headless Service: one per ready pod),
/// named <c>id[address]</c>, with the original <c>Host</c> header, health path and metadata (weight
/// included). What YARP's resolver does not do, this does:
/// <list type="bullet">
/// <item>it never throws: YARP fails the whole configuration when a resolver throws (start-up, or
/// any reload, of every cluster). A name that does not resolve, or resolves to nothing (a headless
/// Service with no ready pod), keeps its last known addresses; one that never resolved has none, and
/// its cluster answers 503 while the others serve;</item>
/// <item>it looks names up again every <see cref="DiscoveryOptions.RefreshPeriod"/>, and sooner
/// (<see cref="DiscoveryOptions.RetryPeriod"/>) while one fails;</item>
/// <item>it logs each change of state once (resolves again, fails, a different set of addresses)
/// and counts resolutions and failures per cluster.</item>
/// </list>
/// A change in the set applies like a config change: new pods get traffic by weight at once, removed
/// ones get no new requests while theirs finish, and pods that stay keep their health state (their
/// names do not change).
/// <para>
/// An edit of <c>Gateway:Discovery</c> alone (<c>Dns</c> turned on or off, a period) has every cluster resolved again at
/// once (<see cref="GatewayConfigProvider.Reapply"/>). Until 2026-12-07 the reload's line said <c>Dns</c> had changed
/// while nothing was resolved until the next edit of <c>ReverseProxy</c>, and a shorter period waited out the longer one.
/// </para>
/// </summary>
internal sealed partial class DnsDiscovery : IDestinationResolver, IDisposable
{
    // The kinds of line its budget counts apart: a DNS outage fails every cluster's names at once, and each was a line
    // (and each cluster's first resolution at start), ten a second of each now.
    private static readonly Telemetry.ChangeLineBudget.Kind ChangedKind = new(LogLevel.Information, "destinations resolved to new addresses", ofDestinations: true);
    private static readonly Telemetry.ChangeLineBudget.Kind FailedKind = new(LogLevel.Warning, "destinations did not resolve (their last known addresses are kept)", ofDestinations: true);
    private static readonly Telemetry.ChangeLineBudget.Kind RecoveredKind = new(LogLevel.Information, "destinations resolved again", ofDestinations: true);

    private readonly ConcurrentDictionary<string, Known> _known = new(StringComparer.OrdinalIgnoreCase);
    private readonly IDestinationResolver _dns;
    private readonly IServiceProvider _services;
    private readonly ReloadableOptions<DiscoveryOptions> _options;
    private readonly DiscoveryMetrics _metrics;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<DnsDiscovery> _logger;
    private readonly Telemetry.ChangeLineBudget _lines;

    public DnsDiscovery(IDestinationResolver dns, IServiceProvider services, ReloadableOptions<DiscoveryOptions> options, DiscoveryMetrics metrics, TimeProvider timeProvider, ILogger<DnsDiscovery> logger)
    {
        _dns = dns;
        _services = services;
        _options = options;
        _metrics = metrics;
        _timeProvider = timeProvider;
        _logger = logger;
        _lines = new(timeProvider, logger, ChangedKind, FailedKind, RecoveredKind);
        options.Changed += OnOptionsChanged;
    }

    public async ValueTask<ResolvedDestinationCollection> ResolveDestinationsAsync(IReadOnlyDictionary<string, DestinationConfig> destinations, CancellationToken cancellationToken)
    {
        // YARP passes a cluster's own destinations dictionary, and only that: find its cluster in the
        // configuration being loaded (read lazily: the provider is built after this resolver).
        var owner = _services.GetRequiredService<IProxyConfigProvider>().GetConfig().Clusters.FirstOrDefault(c => ReferenceEquals(c.Destinations, destinations));
        if (owner is null || !DiscoveryRule.IsOn(owner, _options.Current.Dns))
        {
            return new ResolvedDestinationCollection(destinations, null);
        }

        var cluster = owner.ClusterId;
        var result = new Dictionary<string, DestinationConfig>(StringComparer.OrdinalIgnoreCase);
        var failed = false;
        foreach (var (id, destination) in destinations)
        {
            if (!DiscoveryRule.HasHostName(destination))
            {
                result[id] = destination;
                continue;
            }

            var key = $"{cluster}|{id}|{destination.Address}";
            IReadOnlyDictionary<string, DestinationConfig>? resolved = null;
            string? error = null;
            try
            {
                resolved = (await _dns.ResolveDestinationsAsync(new Dictionary<string, DestinationConfig> { [id] = destination }, cancellationToken)).Destinations;
                if (resolved.Count == 0)
                {
                    error = "no addresses";
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                error = Innermost(ex).Message;
            }

            _known.TryGetValue(key, out var before);
            if (error is null)
            {
                var now = new Known(resolved!, Failing: false);
                _known[key] = now;
                Report(cluster, id, destination.Address, before, now);
                Add(result, resolved!);
                continue;
            }

            failed = true;
            _metrics.Failed(cluster);
            var kept = before?.Destinations ?? new Dictionary<string, DestinationConfig>();
            _known[key] = new Known(kept, Failing: true);
            if (before is not { Failing: true } && _lines.TryTake(FailedKind, cluster))
            {
                Log.Failed(_logger, id, cluster, destination.Address, error, kept.Count);
            }

            Add(result, kept);
        }

        _metrics.Resolved(cluster, result.Count, _timeProvider.GetUtcNow());
        var current = _options.Current;
        var refresh = new CancellationTokenSource(failed ? current.RetryPeriod : current.RefreshPeriod, _timeProvider);
        return new ResolvedDestinationCollection(result, new CancellationChangeToken(refresh.Token));
    }

    /// <summary>YARP resolves every cluster again when it applies the configuration once more.</summary>
    private void OnOptionsChanged(DiscoveryOptions changed) => _services.GetRequiredService<GatewayConfigProvider>().Reapply();

    public void Dispose()
    {
        _options.Changed -= OnOptionsChanged;
        _lines.Dispose();
    }

    private void Report(string cluster, string id, string address, Known? before, Known now)
    {
        if (before is { Failing: true })
        {
            // The addresses may not be the ones kept meanwhile (the pods were replaced while the name did not resolve).
            if (_lines.TryTake(RecoveredKind, cluster))
            {
                Log.Recovered(_logger, id, cluster, address, now.Destinations.Count, Names(now));
            }
        }
        else if ((before is null || !before.Destinations.Keys.ToHashSet(StringComparer.OrdinalIgnoreCase).SetEquals(now.Destinations.Keys))
            && _lines.TryTake(ChangedKind, cluster))
        {
            Log.Changed(_logger, id, cluster, address, now.Destinations.Count, Names(now));
        }
    }

    private static string Names(Known known) => string.Join(", ", known.Destinations.Keys.Order(StringComparer.Ordinal));

    private static void Add(Dictionary<string, DestinationConfig> result, IReadOnlyDictionary<string, DestinationConfig> resolved)
    {
        foreach (var (name, config) in resolved)
        {
            result[name] = config;
        }
    }

    private static Exception Innermost(Exception ex)
    {
        while (ex.InnerException is { } inner)
        {
            ex = inner;
        }

        return ex;
    }

    private sealed record Known(IReadOnlyDictionary<string, DestinationConfig> Destinations, bool Failing);

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Destination {DestinationId} of cluster {ClusterId} ({Address}) resolves to {Count} address(es): {Names}.", EventName = "DiscoveryChanged")]
        public static partial void Changed(ILogger logger, string destinationId, string clusterId, string address, int count, string names);

        [LoggerMessage(2, LogLevel.Warning, "Destination {DestinationId} of cluster {ClusterId} ({Address}) did not resolve ({Error}); keeping its {Count} last known address(es) and trying again soon.", EventName = "DiscoveryFailed")]
        public static partial void Failed(ILogger logger, string destinationId, string clusterId, string address, string error, int count);

        [LoggerMessage(3, LogLevel.Information, "Destination {DestinationId} of cluster {ClusterId} ({Address}) resolves again, to {Count} address(es): {Names}.", EventName = "DiscoveryRecovered")]
        public static partial void Recovered(ILogger logger, string destinationId, string clusterId, string address, int count, string names);
    }
}
