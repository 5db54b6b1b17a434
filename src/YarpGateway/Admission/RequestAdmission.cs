using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Http.Features;
using YarpGateway.Configuration;
using YarpGateway.Telemetry;

namespace YarpGateway.Admission;

/// <summary>
/// Admits proxied requests through the global limit (before routing, in <see cref="Endpoints.ProxyRequestFrame"/>)
/// and the route's and cluster's limits (inside the proxy pipeline, once they are known). A request that cannot be admitted gets
/// 503 with <c>Retry-After</c>; one whose client went away while queued gets nothing. Upgrade
/// requests (WebSockets) hold their slots only until they are answered (<see cref="AdmitUpgrade"/>): a slot for a WebSocket's
/// whole life would be one taken for hours. The upgrade rate and Kestrel's upgraded-connection cap govern them after that. Before those limits, a request whose body is
/// still on its way takes a slot of the uploads' share of the global limit (<see cref="AdmissionOptions.UploadShare"/>).
/// </summary>
internal sealed partial class RequestAdmission(AdmissionLimits limits, AdmissionMetrics metrics, ReloadableOptions<AdmissionOptions> options, TimeProvider timeProvider, ILogger<RequestAdmission> logger)
{
    private readonly LogThrottle _shareLog = new(timeProvider, logger);

    // Set once a request has taken a slot of a cluster's or the uploads' share, and never unset (a reload may take the shares
    // away while requests still hold slots): until then a request's end has no share to look for.
    private volatile bool _sharesTaken;

    /// <summary>The global limit, if one is set; <see cref="Endpoints.ProxyRequestFrame"/> applies it before routing.</summary>
    public ConcurrencyLimit? Global => limits.Global;

    public Task AdmitRouteAndClusterAsync(HttpContext context, RequestDelegate next)
    {
        if (Endpoints.UpgradeRequest.Is(context))
        {
            return AdmitUpgrade(context, next);
        }

        if (limits.UploadShare is { } uploads && UploadUnderWay.Is(context) && !TakeShare(context, uploads, typeof(UploadShareSlot)))
        {
            return WriteRefusalAsync(context);
        }

        var proxy = context.GetReverseProxyFeature();
        var route = limits.ForRoute(proxy.Route.Config);
        ConcurrencyLimit? cluster = null;
        if (proxy.Route.Cluster is { } state)
        {
            cluster = limits.ForCluster(state);
            if (cluster is null && limits.ShareFor(state) is { } share && !TakeShare(context, share, typeof(ClusterShareSlot)))
            {
                return WriteRefusalAsync(context);
            }
        }

        return (route, cluster) switch
        {
            (null, null) => next(context),
            (not null, null) => AdmitAsync(context, route, next),
            (null, not null) => AdmitAsync(context, cluster, next),
            _ => AdmitBothAsync(context, route, cluster, next),
        };
    }

    /// <summary>
    /// An upgrade (a WebSocket's handshake, or SPDY's) passes the global limit and its route's and cluster's limits as any request
    /// does, and holds their slots until it is answered: the backend's 101 starts a connection that may last hours, which the
    /// upgrade rate and Kestrel's upgraded-connection cap govern instead. Until then it is a GET a backend works on, and one that
    /// does not upgrade answers it as an ordinary GET: when upgrades skipped the limits, a GET that carried a WebSocket's
    /// handshake headers passed every one of them (tried: with a global limit of 4, twenty such GETs at once all reached a slow
    /// backend). The global limit is taken here, after routing, rather than before as for other requests.
    /// <para>
    /// The cluster's share of the global limit comes first, and a handshake past it waits in its queue (the global limit's size
    /// and timeout) holding no global slot: handshakes to a WebSocket backend that stopped answering them fill their share and its
    /// queue, not the global slots every other cluster needs. An ordinary request, which holds its global slot already, gets 503
    /// at once past its share instead. The queue is what lets the share apply to handshakes: without one, a reconnect storm to a
    /// backend slower than the storm had its handshakes past the share refused at once (3,000 Python <c>websockets</c> clients at
    /// once, two clusters: 219 to 1,074 of them got 503).
    /// </para>
    /// </summary>
    private Task AdmitUpgrade(HttpContext context, RequestDelegate next)
    {
        var proxy = context.GetReverseProxyFeature();
        var route = limits.ForRoute(proxy.Route.Config);
        ConcurrencyLimit? cluster = null, share = null;
        if (proxy.Route.Cluster is { } state)
        {
            cluster = limits.ForCluster(state);
            share = cluster is null ? limits.ShareFor(state) : null;
        }

        return limits.Global is null && route is null && cluster is null
            ? next(context)
            : AdmitUpgradeAsync(context, share, limits.Global, route, cluster, next);
    }

    // One frame for the handshake's slots. A relayed WebSocket's handshake returns from next once the backend has answered (the
    // relay copies in a frame of its own), which gives them back. A SPDY tunnel's runs for its life, so its slots are given back
    // when its response starts too (a callback kept from relayed WebSockets: an HTTP/2 WebSocket's stream would keep Kestrel's
    // list of them, emptied, for its life).
    private async Task AdmitUpgradeAsync(HttpContext context, ConcurrencyLimit? share, ConcurrencyLimit? global, ConcurrencyLimit? route, ConcurrencyLimit? cluster, RequestDelegate next)
    {
        var untilStarted = context.Features.Get<WebSockets.WebSocketRelay>() is null;
        RateLimitLease? shareSlot = null, globalSlot = null, routeSlot = null, clusterSlot = null;
        try
        {
            if ((share is not null && (shareSlot = await HandshakeSlotAsync(context, share, untilStarted)) is null)
                || (global is not null && (globalSlot = await HandshakeSlotAsync(context, global, untilStarted)) is null)
                || (route is not null && (routeSlot = await HandshakeSlotAsync(context, route, untilStarted)) is null)
                || (cluster is not null && (clusterSlot = await HandshakeSlotAsync(context, cluster, untilStarted)) is null))
            {
                await WriteRefusalAsync(context); // answered 503, or the client left
                return;
            }

            await next(context);
        }
        finally
        {
            clusterSlot?.Dispose();
            routeSlot?.Dispose();
            globalSlot?.Dispose();
            shareSlot?.Dispose();
        }
    }

    private async ValueTask<RateLimitLease?> HandshakeSlotAsync(HttpContext context, ConcurrencyLimit limit, bool untilStarted)
    {
        var result = await AcquireAsync(context, limit);
        if (!Settle(context, limit, result, out var held))
        {
            return null;
        }

        return untilStarted ? StreamSlot.UntilResponseStarts(context, held!) : held; // admitted: a lease
    }

    /// <summary>
    /// Takes a slot of a share of the global limit at once or answers 503 (no queue: the request holds its global slot), kept in the request's features under
    /// <paramref name="key"/> and held as the global slot is, by the request's frame, which gives it back with
    /// <see cref="ReleaseShare"/> when the request ends: no async frame of its own per request (one cost 177 bytes a
    /// request). A slot of the uploads' share is also given back when the response starts.
    /// </summary>
    private bool TakeShare(HttpContext context, ConcurrencyLimit share, Type key)
    {
        if (!Settle(context, share, share.TryAcquireNow(), out var held))
        {
            return false;
        }

        _sharesTaken = true;
        context.Features[key] = key == typeof(UploadShareSlot) ? StreamSlot.UntilResponseStarts(context, held!) : held;
        return true;
    }

    /// <summary>Gives back the request's slots of its cluster's share and of the uploads' share, if it took them (<see cref="TakeShare"/>).</summary>
    public void ReleaseShare(HttpContext context)
    {
        if (_sharesTaken)
        {
            Release(context, typeof(ClusterShareSlot));
            Release(context, typeof(UploadShareSlot));
        }

        static void Release(HttpContext context, Type key)
        {
            if (context.Features[key] is RateLimitLease held)
            {
                context.Features[key] = null;
                held.Dispose();
            }
        }
    }

    /// <summary>The key under which a request's slot of its cluster's share is kept in its features.</summary>
    private static class ClusterShareSlot;

    /// <summary>The key under which a request's slot of the uploads' share is kept in its features.</summary>
    private static class UploadShareSlot;

    // In a method of its own: a lambda capturing locals makes the compiler allocate their closure on
    // entry to the method that declares them, on every request, whichever arm the switch takes.
    private Task AdmitBothAsync(HttpContext context, ConcurrencyLimit route, ConcurrencyLimit cluster, RequestDelegate next)
        => AdmitAsync(context, route, c => AdmitAsync(c, cluster, next));

    /// <summary>Takes a slot of <paramref name="limit"/>, queueing if it is full (no allocation when a slot is free).</summary>
    public ValueTask<AdmissionResult> AcquireAsync(HttpContext context, ConcurrencyLimit limit)
        => limit.AcquireAsync(timeProvider, context.RequestAborted);

    /// <summary>
    /// Counts the outcome of <see cref="AcquireAsync"/>; a request not admitted is answered 503 (or
    /// nothing, if its client left while it queued). True when admitted: the caller then holds
    /// <paramref name="held"/> until the request ends (for a request for a stream, under a limit that
    /// frees started streams, a lease that is also given back when the response starts).
    /// </summary>
    public bool Settle(HttpContext context, ConcurrencyLimit limit, AdmissionResult result, out RateLimitLease? held)
    {
        if (!result.IsAdmitted)
        {
            held = null;
            metrics.Rejected(limit, result.Reason, result.Waited);
            if (result.Reason != AdmissionRejection.ClientGone)
            {
                Reject(context, options.Current.RetryAfter);
            }

            if (limit.Kind == AdmissionLimits.ClusterShareKind && _shareLog.ShouldLog(limit.Name, out var suppressed, LogLevel.Warning))
            {
                Log.ClusterShareFull(logger, limit.Name, limit.Settings.MaxConcurrency, options.Current.ClusterShare, suppressed);
            }
            else if (limit.Kind == AdmissionLimits.UploadShareKind && _shareLog.ShouldLog(AdmissionLimits.UploadShareKind, out suppressed, LogLevel.Warning))
            {
                Log.UploadShareFull(logger, limit.Settings.MaxConcurrency, options.Current.UploadShare, suppressed);
            }

            return false;
        }

        metrics.Admitted(limit, result.Waited); // not counted for a share (taken by every request), but a handshake's wait for one is

        held = result.Lease is { } lease && limit.FreesStartedStreams ? StreamSlot.ForRequest(context, lease) : result.Lease;
        return true;
    }

    private async Task AdmitAsync(HttpContext context, ConcurrencyLimit limit, RequestDelegate next)
    {
        var result = await AcquireAsync(context, limit);
        if (Settle(context, limit, result, out var held))
        {
            using (held)
            {
                await next(context);
            }
        }
        else
        {
            await WriteRefusalAsync(context);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "Cluster {ClusterId} holds {Slots} requests, its share of the global limit (Gateway:Admission:ClusterShare {Share}); more get 503 at once until some finish (WebSocket handshakes first wait in its queue, as long as the global limit's QueueTimeout), so that the other clusters keep theirs. {Suppressed} more refused in the last second. A backend that is slow or does not answer holds them (gateway_proxy_destination_in_flight): give the cluster a timeout (route Timeout, Metadata.TryTimeout) or a MaxConcurrency of its own.", EventName = "ClusterShareFull")]
        public static partial void ClusterShareFull(ILogger logger, string clusterId, int slots, double share, long suppressed);

        [LoggerMessage(2, LogLevel.Warning, "{Slots} requests are still receiving their bodies from their clients, the uploads' share of the global limit (Gateway:Admission:UploadShare {Share}); more such requests get 503 at once until some finish, so that other requests keep their slots. {Suppressed} more refused in the last second. Many clients sending bodies slowly hold them (a slow-POST attack looks like this: Kestrel lets a body arrive as slowly as 240 bytes a second, Kestrel:Limits:MinRequestBodyDataRate); legitimate uploads this many at once need a larger share, or 1 to turn it off.", EventName = "UploadShareFull")]
        public static partial void UploadShareFull(ILogger logger, int slots, double share, long suppressed);
    }

    /// <summary>503 with a <c>Retry-After</c> in whole seconds (at least 1); its body is written by <see cref="WriteRefusalAsync"/>.</summary>
    internal static void Reject(HttpContext context, TimeSpan retryAfter)
    {
        context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        context.Response.Headers.CacheControl = "no-store";
    }

    /// <summary>
    /// The body of a refusal <see cref="Reject"/> set up, once whatever must see it first has (the CORS policy, for a
    /// request the global limit refused before routing): one line that says it is the gateway's, as its 502s and 504s
    /// say, where it was empty and looked like a backend's own 503. Nothing for anything else (a client that left while it
    /// queued, a response that started).
    /// </summary>
    internal static Task WriteRefusalAsync(HttpContext context)
    {
        var response = context.Response;
        if (response.StatusCode != StatusCodes.Status503ServiceUnavailable || response.HasStarted || context.RequestAborted.IsCancellationRequested)
        {
            return Task.CompletedTask;
        }

        return Endpoints.TextAnswer.WriteAsync(context, string.Concat("gateway: too busy to take this request now; try again in ", response.Headers.RetryAfter.ToString(), " s\n"), context.RequestAborted);
    }
}
