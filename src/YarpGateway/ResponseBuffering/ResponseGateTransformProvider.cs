using System.Net;
using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;
using YarpGateway.Configuration;

namespace YarpGateway.ResponseBuffering;

/// <summary>
/// Puts a <see cref="ResponseWriteGate"/> between YARP's response copy and the client, for bodies large enough to
/// fill YARP's 64 KiB copy buffer (no <c>Content-Length</c>, or one over <see cref="MinLength"/>), so that a client
/// that reads slowly or not at all holds no copy buffer while the copy waits for it. Not for upgraded connections
/// (the WebSocket relay has its own gate), nor for a body held back for a retry. The gate writes through the response
/// body feature's pipe writer, which copies what it is given (Kestrel's, or the output cache's stream behind a pipe
/// adapter). Small responses, the common case, are left as they are.
/// </summary>
internal sealed class ResponseGateTransformProvider(ResponseBufferingCounters counters) : RouteTransformProvider
{
    /// <summary>Bodies of at most this many bytes, by their <c>Content-Length</c>, go through YARP's copy as they are.</summary>
    public const long MinLength = 64 * 1024;

    public override void Apply(TransformBuilderContext context)
        => context.AddResponseTransform(transform =>
        {
            // After the retry transform (registered last): a body held back for a retry is never copied.
            if (!transform.SuppressResponseBody && transform.ProxyResponse is { } response && Applies(transform.HttpContext, response)
                && !ResponseWriteGate.IsOutput(transform.HttpContext.Response.Body)
                && transform.HttpContext.Features.Get<IHttpResponseBodyFeature>() is { } body)
            {
                var gate = new ResponseWriteGate(body.Writer, counters);
                response.Content = new GatedResponseContent(response.Content, gate);
                transform.HttpContext.Features.Set<IHttpResponseBodyFeature>(new GatedResponseBody(gate.Output, body));
            }

            return ValueTask.CompletedTask;
        });

    // The length first: most responses are small, and it is read from the response's own headers; the methods next; the
    // upgrade check last, as it reads the request's headers and may look among its features.
    private static bool Applies(HttpContext context, HttpResponseMessage response)
        => response.StatusCode != HttpStatusCode.SwitchingProtocols
            && response.Content.Headers.ContentLength is null or > MinLength
            && response.RequestMessage?.Method != HttpMethod.Connect
            && !HttpMethods.IsHead(context.Request.Method)
            && !HttpMethods.IsConnect(context.Request.Method)
            && !Endpoints.UpgradeRequest.Is(context); // WebSockets, also when the backend answers an HTTP/2 extended CONNECT with 200
}
