using Microsoft.AspNetCore.Http.Features;

namespace YarpGateway.RequestFiltering;

/// <summary>
/// Reads and drops a request body nobody read, once the request's answer has gone out: the 413 for a body over the
/// limit, or a 401, 403, 404, 405, 429 or 503 given before the body was read.
/// <para>
/// Most clients (Python's <c>requests</c>, .NET's <c>HttpClient</c>) write the whole body before they read, and a
/// connection closed on unread bytes is reset, taking the answer with it: the client reports a broken pipe. Kestrel
/// reads an unread body after the answer, but for 5 s only, and not at all when it is over the limit (every 40 MB
/// upload met a reset, where nginx answered every time; a 20 MB one sent at 1 MB/s would too). Here the body is read
/// for at most <see cref="DrainTime"/> (nginx's <c>lingering_time</c>), or until the gateway stops, and then the
/// connection is closed on what is left. A body read to its end leaves the connection open for the next request.
/// </para>
/// Only over HTTP/1.x (over HTTP/2 the stream is reset with <c>NO_ERROR</c> after the answer, as RFC 9113 asks), for a
/// body with a <c>Content-Length</c> or chunked, and only one that nothing began to read: a chunked body that grew past
/// the limit while YARP forwarded it has already failed in Kestrel's reader. A client that sent
/// <c>Expect: 100-continue</c> is waiting for the answer and sends nothing more, so nothing is read. It runs after the
/// framing checks, so a request with ambiguous framing is never read on.
/// </summary>
internal sealed class RefusedBodyDrain(TimeProvider timeProvider, IHostApplicationLifetime lifetime)
{
    /// <summary>How long a refused body is read for before its connection closes (nginx's <c>lingering_time</c>).</summary>
    public static readonly TimeSpan DrainTime = TimeSpan.FromSeconds(30);

    public Func<RequestDelegate, RequestDelegate> Middleware => next => context =>
    {
        if (!(context.Request.ContentLength > 0 || context.Request.Headers.TransferEncoding.Count > 0)
            || !(HttpProtocol.IsHttp11(context.Request.Protocol) || HttpProtocol.IsHttp10(context.Request.Protocol)))
        {
            return next(context); // no body (GET) or not HTTP/1.x: nothing to do, no frame of ours
        }

        var pending = next(context);
        if (pending.IsCompletedSuccessfully)
        {
            return NeedsDrain(context) ? DrainAsync(context) : pending;
        }

        return AfterAsync(pending, context);
    };

    private async Task AfterAsync(Task pending, HttpContext context)
    {
        await pending;
        if (NeedsDrain(context))
        {
            await DrainAsync(context);
        }
    }

    // Never read (the limit can still change: nothing has read it), and no client waiting for 100.
    private static bool NeedsDrain(HttpContext context)
        => context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false }
            && !context.RequestAborted.IsCancellationRequested
            && !ExpectsContinue(context.Request);

    private static bool ExpectsContinue(HttpRequest request)
    {
        foreach (var value in request.Headers.Expect)
        {
            if (value is not null && value.Contains("100-continue", StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    private async Task DrainAsync(HttpContext context)
    {
        var limit = context.Features.Get<IHttpMaxRequestBodySizeFeature>()!;
        try
        {
            await context.Response.CompleteAsync(); // the answer goes out first: a client that reads while it writes stops
            limit.MaxRequestBodySize = null; // what is read here is dropped, not forwarded

            using var deadline = new CancellationTokenSource(DrainTime, timeProvider);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, context.RequestAborted, lifetime.ApplicationStopping);
            var reader = context.Request.BodyReader;
            while (true)
            {
                var result = await reader.ReadAsync(linked.Token);
                reader.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    return; // all of it read: the connection closes (or is kept) cleanly
                }
            }
        }
        catch (OperationCanceledException)
        {
            context.Abort(); // out of time, or the gateway stopping: close on what is left
        }
        catch (Exception ex) when (ex is IOException or BadHttpRequestException)
        {
            // The client left, or its body ended short: Kestrel closes the connection.
        }
    }
}
