using System.Threading.RateLimiting;
using YarpGateway.Admission;
using YarpGateway.Resilience;
using YarpGateway.Telemetry;
using YarpGateway.WebSockets;

namespace YarpGateway.Endpoints;

/// <summary>
/// The one asynchronous frame the gateway keeps around each request on the proxy endpoint, before
/// routing, for what has to happen once the request is over:
/// <list type="bullet">
/// <item>counting it in flight (and an upgrade as an upgraded connection, for its life): <see cref="TrafficCounters"/>;</item>
/// <item>admission: the upgrade rate for upgrades, the global concurrency limit for the rest, whose slot
/// it holds until the request ends (a request for a stream, until its response starts: <see cref="RequestAdmission.Settle"/>):
/// <see cref="UpgradeAdmission"/>, <see cref="RequestAdmission"/>; a browser's request refused goes on to its route's
/// CORS policy for its headers, and no further (<see cref="Cors.RefusedBeforeRouting"/>);</item>
/// <item>a request past its connection's first, counted for the adaptive connection rate: <see cref="EstablishedRequests"/>;</item>
/// <item>a proxied request's duration (<c>gateway.proxy.request.duration</c>) and final error, or the status of a request
/// answered without reaching a proxy route (<c>gateway.requests.not_proxied</c>): <see cref="RequestMetrics"/>, <see cref="ProxyErrorLog"/>.</item>
/// </list>
/// Each used to be a middleware with its own state machine, allocated per request and, for a
/// WebSocket, held for its whole life. Here a free global slot is taken without allocating and the
/// request runs in one frame; only a request that has to queue for the global limit gets a second.
/// That frame is not even this one's when the request reaches a frame further in that waits for it anyway: a WebSocket's
/// relay (<see cref="WebSocketRelay.TakeRequestEnd"/>) or, for every other proxied request, the retries'
/// (<see cref="RetryAttempt.TakeRequestEnd"/>) do the end as they end. This one waits only for requests that are still
/// running before they reach the retries (a route limit's queue, authorization, the output cache's lock).
/// </summary>
internal sealed class ProxyRequestFrame(
    TrafficCounters traffic,
    UpgradeAdmission upgrades,
    RequestAdmission admission,
    RequestMetrics metrics,
    ProxyErrorLog errors,
    EstablishedRequests established,
    Cors.RefusedBeforeRouting refused,
    TimeProvider timeProvider) : IRelayedRequestEnd, IProxiedRequestEnd
{
    public Func<RequestDelegate, RequestDelegate> Middleware => next => context => InvokeAsync(context, next);

    private Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var started = timeProvider.GetTimestamp();
        var upgrade = UpgradeRequest.Is(context);
        traffic.RequestStarted(upgrade);
        if (!FirstRequestGate.ReleaseWhenFirstResponseStarts(context))
        {
            established.Count(); // an open connection's next request: what the adaptive connection rate protects
        }

        RateLimitLease? lease = null;
        if (upgrade)
        {
            // An upgrade takes its concurrency slots once routed, and holds them only until it is answered
            // (RequestAdmission.AdmitUpgrade): they would be held for a WebSocket's whole life from here.
            if (!upgrades.TryAdmit(context))
            {
                traffic.RequestEnded(context, upgrade);
                return RequestAdmission.WriteRefusalAsync(context);
            }
        }
        else if (admission.Global is { } global)
        {
            var pending = admission.AcquireAsync(context, global);
            if (!pending.IsCompletedSuccessfully)
            {
                return QueuedAsync(context, next, global, pending, started);
            }

            var result = pending.Result; // completed: no wait
            if (!admission.Settle(context, global, result, out lease))
            {
                traffic.RequestEnded(context, upgrade);
                return refused.CarryToCors(context) ? next(context) : RequestAdmission.WriteRefusalAsync(context);
            }
        }

        return RunAsync(context, next, upgrade, lease, started);
    }

    private async Task QueuedAsync(HttpContext context, RequestDelegate next, ConcurrencyLimit global, ValueTask<AdmissionResult> pending, long started)
    {
        AdmissionResult result;
        try
        {
            result = await pending;
        }
        catch
        {
            traffic.RequestEnded(context, upgrade: false);
            throw;
        }

        if (!admission.Settle(context, global, result, out var held))
        {
            traffic.RequestEnded(context, upgrade: false);
            await (refused.CarryToCors(context) ? next(context) : RequestAdmission.WriteRefusalAsync(context));
            return;
        }

        await RunAsync(context, next, upgrade: false, held, started);
    }

    private Task RunAsync(HttpContext context, RequestDelegate next, bool upgrade, RateLimitLease? lease, long started)
    {
        Task running;
        try
        {
            running = next(context);
        }
        catch (Exception ex)
        {
            running = Task.FromException(ex);
        }

        if (!running.IsCompleted)
        {
            // An upgrade the WebSocket relay carries hands its end to the relay, which does it as the request ends: a frame
            // here, waiting for the WebSocket's whole life, would be 136 bytes of each idle WebSocket (upgrades take no lease).
            if (upgrade)
            {
                if (context.Features.Get<WebSocketRelay>() is { } relay && relay.TakeRequestEnd(this, started))
                {
                    return running;
                }
            }
            else if (context.Features.Get<RetryAttempt>() is { } attempt && attempt.TakeRequestEnd(this, lease, started))
            {
                // A proxied request hands it to the retry middleware's frame, which waits for it anyway: two frames
                // waiting for the same request were about 150 bytes more of each. The outer middlewares' last steps
                // after it (releasing a rate limit's lease, the output cache storing the response) are not timed.
                return running;
            }
        }

        return EndWhenDoneAsync(running, context, upgrade, lease, started);
    }

    private async Task EndWhenDoneAsync(Task running, HttpContext context, bool upgrade, RateLimitLease? lease, long started)
    {
        try
        {
            await running;
        }
        finally
        {
            End(context, upgrade, lease, started);
        }
    }

    void IRelayedRequestEnd.RequestEnded(HttpContext context, long started) => End(context, upgrade: true, lease: null, started);

    void IProxiedRequestEnd.RequestEnded(HttpContext context, RateLimitLease? lease, long started) => End(context, upgrade: false, lease, started);

    private void End(HttpContext context, bool upgrade, RateLimitLease? lease, long started)
    {
        lease?.Dispose();
        admission.ReleaseShare(context);
        traffic.RequestEnded(context, upgrade);
        Record(context, upgrade, started);
    }

    // The duration and the error of requests that reached the proxy pipeline (routed to a proxy route); the others counted by status.
    private void Record(HttpContext context, bool upgrade, long started)
    {
        if (context.Features.Get<Yarp.ReverseProxy.Model.IReverseProxyFeature>() is not { } proxy)
        {
            metrics.NotProxied(context.Response.StatusCode);
            return;
        }

        if (!upgrade)
        {
            // An upgraded request's duration is its WebSocket's lifetime, not a request's: the
            // WebSocket metrics count those. A client that left before any response is not a 2xx.
            var clientGone = context.RequestAborted.IsCancellationRequested && !context.Response.HasStarted;
            metrics.Request(proxy.Route.Config.RouteId, proxy.Cluster?.Config.ClusterId, proxy.ProxiedDestination?.DestinationId, context.Response.StatusCode, clientGone, timeProvider.GetElapsedTime(started));
        }

        errors.Record(context, proxy);
    }
}
