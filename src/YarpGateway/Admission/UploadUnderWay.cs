using System.IO.Pipelines;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;

namespace YarpGateway.Admission;

/// <summary>
/// Whether a request's body is still on its way from its client as the request reaches the route and cluster limits: what
/// the upload share of the global limit counts (<see cref="AdmissionOptions.UploadShare"/>). A request with no body is not
/// one, nor is one whose whole body came with its head (a JSON POST, a gRPC unary call's message): Kestrel's reader has it
/// all, which a read that takes nothing tells without waiting. A client that sent <c>Expect: 100-continue</c> sends its body
/// only once asked (a read would ask), so its body is still to come.
/// <para>
/// The route's <c>MaxRequestBodySize</c> is applied before the look, as YARP applies it just before forwarding, which it could
/// no longer do once the body was started. A gRPC call over HTTP/2 has Kestrel's minimum data rate and body size lifted
/// first, as YARP lifts them for it (Kestrel keeps what was in force when a body started): a unary call's one message has
/// come with its head, and a client stream counts until its response starts, as an upload does. Without the count, a
/// client could hold global slots with gRPC-looking streams that send a byte a minute.
/// </para>
/// </summary>
internal static class UploadUnderWay
{
    public static bool Is(HttpContext context)
    {
        var request = context.Request;
        var streamed = false;
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
        else if (IsGrpc(request.ContentType))
        {
            LiftLimitsAsYarpDoes(context);
            streamed = true;
        }

        if (request.Headers.Expect.Count > 0)
        {
            return true;
        }

        if (!streamed && context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { } size)
        {
            RequestFiltering.RequestBodyLimit.ApplyTheRoutesLimit(context, size);
        }

        // Kestrel's own reader: over HTTP/1.x the body stream was replaced by one over it, which a reader made here would wrap.
        var reader = request.Body is RequestFiltering.Http1RequestBody http1 ? http1.Reader : request.BodyReader;
        return !AllReceived(reader);
    }

    // As YARP tells a request it streams: application/grpc, alone or with a parameter or a suffix (not gRPC-Web's types).
    private static bool IsGrpc(string? contentType)
        => contentType is { } type
            && type.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase)
            && (type.Length == "application/grpc".Length || type["application/grpc".Length] is ';' or '+');

    // YARP's own step for a request it streams (HTTP/2 or later, a gRPC content type), taken here because the look below
    // starts the body: after it, YARP's would change nothing.
    private static void LiftLimitsAsYarpDoes(HttpContext context)
    {
        if (context.Features.Get<IHttpMinRequestBodyDataRateFeature>() is { } rate)
        {
            rate.MinDataRate = null;
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = null;
        }
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
        catch (BadHttpRequestException)
        {
            return true; // a body Kestrel refuses (over the limit, bad chunking) fails the same way when forwarded, at once: nothing to hold
        }
    }
}
