using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Model;
using YarpGateway.Telemetry;

namespace YarpGateway.RequestFiltering;

/// <summary>
/// Request bodies over the request's limit (the route's <c>MaxRequestBodySize</c>, else
/// <c>Kestrel:Limits:MaxRequestBodySize</c>, 30,000,000 bytes by default): one whose <c>Content-Length</c> says so
/// gets 413 before it reaches route and cluster limits or a backend (Kestrel would refuse it only once YARP began sending
/// it, with the request already on its way to the backend); one that grows past the limit while it streams gets
/// 413 from YARP, seen here on the way back (only requests that can have a body pass through an async frame of ours). Either way one line names the route and the limit, at most once a second per route, since the
/// client only sees the status and the operator would otherwise find the cause in no log.
/// </summary>
internal sealed partial class RequestBodyLimit(Telemetry.RequestId requestIds, TimeProvider timeProvider, ILogger<RequestBodyLimit> logger)
{
    private readonly LogThrottle _throttle = new(timeProvider, logger);

    public Func<RequestDelegate, RequestDelegate> Middleware => next => context =>
    {
        if (context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody != true)
        {
            return next(context); // no body (GET, HEAD, ...): nothing to check, no frame of ours
        }

        if (context.Request.ContentLength is > 0 and var length
            && context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { } size
            && WithTheRoutesLimit(context, size) is { } max
            && length > max)
        {
            Refused(context);
            context.Response.StatusCode = StatusCodes.Status413PayloadTooLarge;
            if (HttpProtocol.IsHttp11(context.Request.Protocol) || HttpProtocol.IsHttp10(context.Request.Protocol))
            {
                context.Response.Headers.Connection = "close"; // the body is not forwarded (RefusedBodyDrain reads and drops it)
            }

            return Task.CompletedTask;
        }

        return ForwardAsync(next, context);
    };

    /// <summary>
    /// The request's limit, with the route's <c>MaxRequestBodySize</c> applied first (-1: none), as YARP applies it
    /// only just before forwarding: compared with Kestrel's alone, a body the route allows got 413.
    /// </summary>
    private static long? WithTheRoutesLimit(HttpContext context, IHttpMaxRequestBodySizeFeature size)
    {
        ApplyTheRoutesLimit(context, size);
        return size.MaxRequestBodySize;
    }

    /// <summary>
    /// Sets the route's <c>MaxRequestBodySize</c> (-1: none) on the request, as YARP does just before forwarding, if the body
    /// has not been started: whatever reads the body before YARP does must call this first, or the route's limit is lost
    /// (Kestrel's limit becomes read-only once the body is read, and YARP then leaves it as it is).
    /// </summary>
    internal static void ApplyTheRoutesLimit(HttpContext context, IHttpMaxRequestBodySizeFeature size)
    {
        if (!size.IsReadOnly && context.GetEndpoint()?.Metadata.GetMetadata<RouteModel>()?.Config.MaxRequestBodySize is { } route)
        {
            size.MaxRequestBodySize = route == -1 ? null : route;
        }
    }

    // A streamed body that grows past the limit: Kestrel's read fails, YARP answers 413 (request_body_client).
    private async Task ForwardAsync(RequestDelegate next, HttpContext context)
    {
        await next(context);
        if (context.Response.StatusCode == StatusCodes.Status413PayloadTooLarge
            && context.Features.Get<Yarp.ReverseProxy.Forwarder.IForwarderErrorFeature>() is { Error: Yarp.ReverseProxy.Forwarder.ForwarderError.RequestBodyClient } error
            && IsOverTheLimit(error.Exception))
        {
            Refused(context);
        }
    }

    // Kestrel's refusal of the body, not a backend's 413 forwarded while the read of the body was cut short.
    private static bool IsOverTheLimit(Exception? exception)
    {
        for (var ex = exception; ex is not null; ex = ex.InnerException)
        {
            if (ex is BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge })
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Logs a request refused with 413 for its body's size (throttled).</summary>
    private void Refused(HttpContext context)
    {
        var route = context.GetEndpoint()?.Metadata.GetMetadata<RouteModel>()?.Config.RouteId ?? "-";
        if (logger.IsEnabled(LogLevel.Information) && _throttle.ShouldLog("request_body_too_large|" + route, out var suppressed))
        {
            var limit = context.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize;
            Log.TooLarge(logger, limit?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?", route, requestIds.Of(context), suppressed);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Refused a request body over {Limit} bytes on route '{Route}' (request id {RequestId}) with 413. If such bodies are expected, raise the route's MaxRequestBodySize (-1: no limit) or Kestrel:Limits:MaxRequestBodySize. {Suppressed} more like it in the last second.", EventName = "RequestBodyTooLarge")]
        public static partial void TooLarge(ILogger logger, string limit, string route, string requestId, long suppressed);
    }
}
