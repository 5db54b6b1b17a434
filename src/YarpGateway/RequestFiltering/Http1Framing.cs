using YarpGateway.Telemetry;

namespace YarpGateway.RequestFiltering;

/// <summary>
/// HTTP/1.x requests whose framing or method RFC 9112 lets a server refuse and that proxies read
/// differently get 400 with <c>Connection: close</c> before routing, so that a proxy in front of the
/// gateway and the gateway never disagree on where one request ends and the next begins:
/// more than one <c>Transfer-Encoding</c> header, <c>Transfer-Encoding</c> in an HTTP/1.0 request (RFC 9112 §6.1:
/// its framing is faulty), and a method with lower-case letters (methods are
/// case-sensitive; <c>get</c> used to be forwarded as <c>GET</c>). A transfer coding other than
/// <c>chunked</c> gets 501, as RFC 9112 §6.1 and nginx have it: Kestrel undid only the chunking of
/// <c>gzip, chunked</c> and the backend got the compressed bytes as <c>Transfer-Encoding: chunked</c>,
/// told nothing of the gzip. <c>Transfer-Encoding: chunked</c> together with <c>Content-Length</c> does not reach
/// here as such: Kestrel processes the request by its chunked framing alone, drops the length and closes the connection
/// after its answer (RFC 9112 §6.1 and §6.3; pinned by a test), so the check for both is a guard should that change.
/// Kestrel already refuses duplicate
/// <c>Content-Length</c> values, bad chunk framing and bare LF, and, given
/// <see cref="ContentLengthDigitsEncoding"/>, a <c>Content-Length</c> that is not plain digits (<c>+5</c>):
/// by the time a middleware runs, Kestrel has kept only the number.
/// Synchronous; a few comparisons per request.
/// </summary>
internal static class Http1Framing
{
    /// <summary>The filter; a refusal is counted in <paramref name="metrics"/> (<c>gateway.requests.not_proxied</c>).</summary>
    public static Func<RequestDelegate, RequestDelegate> Middleware(RequestMetrics metrics) => next => context =>
    {
        var request = context.Request;
        if (HttpProtocol.IsHttp2(request.Protocol) || HttpProtocol.IsHttp3(request.Protocol))
        {
            return next(context);
        }

        var problem = Check(request);
        if (problem is null)
        {
            return next(context);
        }

        context.Response.StatusCode = problem == UnknownCoding ? StatusCodes.Status501NotImplemented : StatusCodes.Status400BadRequest;
        metrics.NotProxied(context.Response.StatusCode);
        context.Response.Headers.Connection = "close"; // the rest of the bytes on this connection cannot be trusted
        return Endpoints.TextAnswer.WriteAsync(context, "gateway: " + problem + "\n", context.RequestAborted);
    };

    /// <summary>The problem of a transfer coding other than <c>chunked</c>, answered 501.</summary>
    internal const string UnknownCoding = "a transfer coding other than chunked, which the gateway does not forward";

    internal static string? Check(HttpRequest request)
    {
        foreach (var c in request.Method)
        {
            if (c is >= 'a' and <= 'z')
            {
                return "methods are case-sensitive; use upper case";
            }
        }

        var headers = request.Headers;
        var transferEncoding = headers.TransferEncoding;
        if (transferEncoding.Count > 1)
        {
            return "more than one Transfer-Encoding header";
        }

        // RFC 9112 §6.1: HTTP/1.0 has no Transfer-Encoding, so a recipient MUST treat such a message's framing as faulty
        // (a proxy in front that reads it by HTTP/1.0's rules sees no body where Kestrel reads a chunked one). nginx: 400.
        if (transferEncoding.Count == 1 && HttpProtocol.IsHttp10(request.Protocol))
        {
            return "Transfer-Encoding in an HTTP/1.0 request";
        }

        if (transferEncoding.Count == 1 && headers.ContentLength is not null)
        {
            return "both Transfer-Encoding and Content-Length";
        }

        if (transferEncoding.Count == 1 && !transferEncoding[0].AsSpan().Trim().Equals("chunked", StringComparison.OrdinalIgnoreCase))
        {
            return UnknownCoding;
        }

        return null;
    }
}
