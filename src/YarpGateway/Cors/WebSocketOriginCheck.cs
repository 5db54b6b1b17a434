using Microsoft.AspNetCore.Cors;
using Microsoft.AspNetCore.Cors.Infrastructure;
using Yarp.ReverseProxy.Model;
using YarpGateway.Telemetry;

namespace YarpGateway.Cors;

/// <summary>
/// A route's CORS policy applies to its WebSocket handshakes too. Browsers do not apply CORS to WebSockets: any page may
/// open one to any host, with that host's cookies, and read what comes back (cross-site WebSocket hijacking). So a
/// handshake on a route with a CORS policy whose <c>Origin</c> is neither the gateway's own host nor one the policy
/// allows gets 403 before it reaches the backend, as ASP.NET Core's own <c>WebSocketOptions.AllowedOrigins</c> does. A
/// handshake without an <c>Origin</c> is not a browser's and passes; so does every handshake on a route without a
/// policy, or with <c>Disable</c>. Counted in <c>gateway.cors.websocket_refused</c>, logged once a second per route.
/// </summary>
internal sealed partial class WebSocketOriginCheck(ICorsPolicyProvider policies, CorsMetrics metrics, Telemetry.RequestId requestIds, TimeProvider timeProvider, ILogger<WebSocketOriginCheck> logger)
{
    private readonly LogThrottle _throttle = new(timeProvider, logger);

    public Task InvokeAsync(HttpContext context, RequestDelegate next)
        => context.Request.Headers.Origin.Count == 0 || !Endpoints.UpgradeRequest.Is(context) ? next(context) : CheckAsync(context, next);

    private async Task CheckAsync(HttpContext context, RequestDelegate next)
    {
        var origin = context.Request.Headers.Origin.ToString();
        var metadata = context.GetEndpoint()?.Metadata;
        if (IsSameOrigin(origin, context.Request.Host) || metadata?.GetMetadata<IDisableCorsAttribute>() is not null
            || await policies.GetPolicyAsync(context, metadata?.GetMetadata<IEnableCorsAttribute>()?.PolicyName) is not { } policy
            || policy.AllowAnyOrigin || policy.IsOriginAllowed(origin))
        {
            await next(context);
            return;
        }

        var route = metadata?.GetMetadata<RouteModel>()?.Config.RouteId ?? "-";
        metrics.Refused(route);
        if (logger.IsEnabled(LogLevel.Information) && _throttle.ShouldLog(route, out var suppressed))
        {
            Log.Refused(logger, route, requestIds.Of(context), origin.Length > 100 ? origin[..100] : origin, suppressed);
        }

        context.Response.StatusCode = StatusCodes.Status403Forbidden;
        await Endpoints.TextAnswer.WriteAsync(context, "gateway: WebSocket origin not allowed\n", context.RequestAborted);
    }

    /// <summary>Whether <paramref name="origin"/> is the host the request was sent to (the page came from the gateway itself).</summary>
    internal static bool IsSameOrigin(string origin, HostString host)
        => Uri.TryCreate(origin, UriKind.Absolute, out var uri)
            && host.HasValue
            && string.Equals(uri.Host, host.Host, StringComparison.OrdinalIgnoreCase)
            && (host.Port is not { } port || port == uri.Port);

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Refused a WebSocket handshake on route '{Route}' (request id {RequestId}) with 403: its Origin '{Origin}' is neither this host nor allowed by the route's CORS policy (browsers do not apply CORS to WebSockets, so the gateway does); {Suppressed} similar refusals in the last second not logged.", EventName = "WebSocketOriginRefused")]
        public static partial void Refused(ILogger logger, string route, string requestId, string origin, long suppressed);
    }
}
