using Microsoft.AspNetCore.Http.Features;

namespace YarpGateway.RequestFiltering;

/// <summary>
/// Reads and drops the rest of a request body once the request's answer has gone out without all of it: the 413 for
/// a body over the limit, a 401, 403, 404, 405, 429 or 503 given before the body was read, or a backend's answer
/// before it had the whole body (an HTTP/2 backend's 413 and reset of the stream, say).
/// <para>
/// Most clients (Python's <c>requests</c>, .NET's <c>HttpClient</c>) write the whole body before they read, and a
/// connection closed on unread bytes is reset, taking the answer with it: the client reports a broken pipe. Kestrel
/// reads an unread body after the answer, but for 5 s only, and not at all when it is over the limit (every 40 MB
/// upload met a reset, where nginx answered every time; a 20 MB one sent at 1 MB/s would too), nor after a read that
/// was cancelled (see <see cref="Http1RequestBody"/>, which YARP reads the body through). Here the body is read
/// for at most <see cref="DrainTime"/> (nginx's <c>lingering_time</c>), and then the connection is closed on what is
/// left. A body read to its end leaves the connection open for the next request. At shutdown the drain is a request
/// in flight like any other: it goes on through the drain delay (it had ended at SIGTERM, and every upload refused
/// then met a reset), and ends with Kestrel's wait for requests in flight, or at a second SIGTERM.
/// </para>
/// Only over HTTP/1.x (over HTTP/2 the stream is reset with <c>NO_ERROR</c> after the answer, as RFC 9113 asks), for a
/// body with a <c>Content-Length</c> or chunked. A client that sent <c>Expect: 100-continue</c> and was asked for
/// nothing is waiting for the answer and sends nothing more, so nothing is read. A body that failed in Kestrel's
/// reader (a chunked body that grew past the limit while YARP forwarded it) fails again here, and the connection
/// closes. It runs after the framing checks, so a request with ambiguous framing is never read on.
/// </summary>
internal sealed class RefusedBodyDrain(TimeProvider timeProvider)
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

        var body = new Http1RequestBody(context.Request.BodyReader);
        context.Request.Body = body;
        var pending = next(context);
        if (pending.IsCompletedSuccessfully)
        {
            return NeedsDrain(context, body) ? DrainAsync(context, body.Reader) : pending;
        }

        return AfterAsync(pending, context, body);
    };

    private async Task AfterAsync(Task pending, HttpContext context, Http1RequestBody body)
    {
        await pending;
        if (NeedsDrain(context, body))
        {
            await DrainAsync(context, body.Reader);
        }
    }

    // Not read to its end, nothing still reading it, and no client waiting for a 100 that never came.
    private static bool NeedsDrain(HttpContext context, Http1RequestBody body)
        => !body.ReadToEnd
            && !body.Reading
            && !context.RequestAborted.IsCancellationRequested
            && (body.Started || !ExpectsContinue(context.Request));

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

    private async Task DrainAsync(HttpContext context, System.IO.Pipelines.PipeReader reader)
    {
        try
        {
            await context.Response.CompleteAsync(); // the answer goes out first: a client that reads while it writes stops
            if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            {
                limit.MaxRequestBodySize = null; // what is read here is dropped, not forwarded
            }

            using var deadline = new CancellationTokenSource(DrainTime, timeProvider);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, context.RequestAborted);
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
            context.Abort(); // out of time: close on what is left
        }
        catch (Exception ex) when (ex is IOException or BadHttpRequestException)
        {
            // The client left, or its body ended short: Kestrel closes the connection.
        }
    }
}
