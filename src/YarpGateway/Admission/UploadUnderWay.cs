using System.IO.Pipelines;
using Microsoft.AspNetCore.Http.Features;

namespace YarpGateway.Admission;

/// <summary>
/// Whether a request's body is still on its way from its client as the request reaches the route and cluster limits: what
/// the upload share of the global limit counts (<see cref="AdmissionOptions.UploadShare"/>). A request with no body is not
/// one, nor is one whose whole body came with its head (a JSON POST, a gRPC unary call's message): Kestrel's reader has it
/// all, which a read that takes nothing tells without waiting. A client that sent <c>Expect: 100-continue</c> sends its body
/// only once asked (a read would ask), so its body is still to come.
/// <para>
/// The route's <c>MaxRequestBodySize</c> is applied before the look, as YARP applies it just before forwarding: over HTTP/1.x
/// the look starts the body, which fixes Kestrel's limit. Over HTTP/2 it does not, so YARP still lifts the size limit and
/// the minimum data rate for a gRPC call it sends to an HTTP/2 backend, as before (both tested). A gRPC unary call's one
/// message has come with its head; a client stream counts until its response starts, as an upload does. Without the count,
/// a client could hold global slots with gRPC-looking streams that send a byte a minute (YARP lifts the minimum rate).
/// </para>
/// </summary>
internal static class UploadUnderWay
{
    public static bool Is(HttpContext context)
    {
        var request = context.Request;
        if (HttpProtocol.IsHttp11(request.Protocol) || HttpProtocol.IsHttp10(request.Protocol))
        {
            if (request.ContentLength is not > 0 && request.Headers.TransferEncoding.Count == 0)
            {
                return false; // a GET: no feature lookup
            }
        }
        else if (context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody != true)
        {
            return false;
        }

        if (request.Headers.Expect.Count > 0)
        {
            return true;
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { } size)
        {
            RequestFiltering.RequestBodyLimit.ApplyTheRoutesLimit(context, size);
        }

        // Kestrel's own reader: over HTTP/1.x the body stream was replaced by one over it, which a reader made here would wrap.
        var reader = request.Body is RequestFiltering.Http1RequestBody http1 ? http1.Reader : request.BodyReader;
        return !AllReceived(reader);
    }

    private static bool AllReceived(PipeReader reader)
    {
        try
        {
            if (!reader.TryRead(out var result))
            {
                return false;
            }

            reader.AdvanceTo(result.Buffer.Start); // nothing taken, nothing examined: the next read returns the same bytes at once
            return result.IsCompleted;
        }
        catch (Exception e) when (e is BadHttpRequestException or IOException)
        {
            // A body Kestrel refuses (over the limit, bad chunking; a chunk size too large for a number is an IOException,
            // not a BadHttpRequestException) fails the same way when forwarded, at once, and is answered 400 there: nothing
            // to hold. Uncaught here, it was a 500 and an error logged with its stack for a client's bad input.
            return true;
        }
    }
}
