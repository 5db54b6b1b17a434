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
/// <para>
/// Over HTTP/1.x the refused body is then read and thrown away, for at most <see cref="DrainTime"/> (nginx's
/// <c>lingering_time</c>), before the connection closes: most clients (Python's <c>http.client</c> and
/// <c>requests</c>, .NET's <c>HttpClient</c>) write the whole body before they read, and a connection closed on
/// unread bytes is reset, so they met a broken pipe instead of the 413. A client that sent
/// <c>Expect: 100-continue</c> is waiting for the answer and sends nothing more: nothing is read.
/// </para>
/// </summary>
internal sealed partial class RequestBodyLimit(TimeProvider timeProvider, IHostApplicationLifetime lifetime, ILogger<RequestBodyLimit> logger)
{
    /// <summary>How long a refused body is read for before its connection closes (nginx's <c>lingering_time</c>).</summary>
    public static readonly TimeSpan DrainTime = TimeSpan.FromSeconds(30);

    private readonly LogThrottle _throttle = new(timeProvider, logger);

    public Func<RequestDelegate, RequestDelegate> Middleware => next => context =>
    {
        if (context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody != true)
        {
            return next(context); // no body (GET, HEAD, ...): nothing to check, no frame of ours
        }

        if (context.Request.ContentLength is > 0 and var length
            && context.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize is { } max
            && length > max)
        {
            Refused(context);
            context.Response.StatusCode = StatusCodes.Status413PayloadTooLarge;
            if (HttpProtocol.IsHttp11(context.Request.Protocol) || HttpProtocol.IsHttp10(context.Request.Protocol))
            {
                context.Response.Headers.Connection = "close"; // the body is not forwarded; the connection ends with this answer
                if (!context.Request.Headers.Expect.Any(v => v is not null && v.Contains("100-continue", StringComparison.OrdinalIgnoreCase)))
                {
                    return AnswerThenDrainAsync(context);
                }
            }

            return Task.CompletedTask;
        }

        return ForwardAsync(next, context);
    };

    // A streamed body that grows past the limit: Kestrel's read fails, YARP answers 413 (request_body_client).
    private async Task ForwardAsync(RequestDelegate next, HttpContext context)
    {
        await next(context);
        if (context.Response.StatusCode == StatusCodes.Status413PayloadTooLarge
            && context.Features.Get<Yarp.ReverseProxy.Forwarder.IForwarderErrorFeature>()?.Error == Yarp.ReverseProxy.Forwarder.ForwarderError.RequestBodyClient)
        {
            Refused(context);
        }
    }

    // The 413 goes out first, so a client that reads while it writes has it at once; the body is then read and
    // dropped so that the close after it is a FIN, not a reset that would take the 413 with it.
    private async Task AnswerThenDrainAsync(HttpContext context)
    {
        context.Response.ContentLength = 0;
        try
        {
            await context.Response.CompleteAsync();
            if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            {
                limit.MaxRequestBodySize = null; // what is read here is dropped, not forwarded
            }

            using var deadline = new CancellationTokenSource(DrainTime, timeProvider);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, context.RequestAborted, lifetime.ApplicationStopping);
            var reader = context.Request.BodyReader;
            while (true)
            {
                var result = await reader.ReadAsync(linked.Token);
                reader.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or BadHttpRequestException)
        {
            // Out of time, the client gone or its body malformed: the connection closes on what is left.
        }
    }

    /// <summary>Logs a request refused with 413 for its body's size (throttled).</summary>
    private void Refused(HttpContext context)
    {
        var route = context.GetEndpoint()?.Metadata.GetMetadata<RouteModel>()?.Config.RouteId ?? "-";
        if (logger.IsEnabled(LogLevel.Information) && _throttle.ShouldLog("request_body_too_large|" + route, out var suppressed))
        {
            var limit = context.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize;
            Log.TooLarge(logger, limit?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?", route, suppressed);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Refused a request body over {Limit} bytes on route '{Route}' with 413. If such bodies are expected, raise the route's MaxRequestBodySize (-1: no limit) or Kestrel:Limits:MaxRequestBodySize. {Suppressed} more like it in the last second.", EventName = "RequestBodyTooLarge")]
        public static partial void TooLarge(ILogger logger, string limit, string route, long suppressed);
    }
}
