using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;
using YarpGateway.Configuration;

namespace YarpGateway.Resilience;

/// <summary>
/// Sends a request body larger than <see cref="ResilienceOptions.ExpectContinueAbove"/> (64 KiB; cluster metadata
/// <c>ExpectContinueAbove</c>), or of unknown length, with <c>Expect: 100-continue</c>, so that a backend which answers
/// before it reads the body (413 for an upload over its limit, 401 for a missing token) is heard.
/// <para>
/// Without it, a backend that answers early and closes the connection with the body unread resets it, and
/// <c>SocketsHttpHandler</c> reports the failed write instead of the response it already received
/// (dotnet/runtime#119350): the client got 502 for the backend's 413, and the destination was counted as failing.
/// Tried on loopback with a backend that answers 401 and closes: bodies of 200 KB got 502 about one time in four,
/// bodies of 300 KB and more almost always; nginx passed the 401. With <c>Expect</c>, the handler waits for
/// <c>100 Continue</c> or the final answer before it sends the body (up to its <c>Expect100ContinueTimeout</c>, 1 s,
/// for a backend that ignores <c>Expect</c>; then it sends the body anyway).
/// </para>
/// Only where the backend connection may be HTTP/1.1 (an HTTP/2 backend's early answer arrives whatever the body
/// does), and never over a client's own <c>Expect</c>, which YARP forwards as it is.
/// </summary>
internal sealed class ExpectContinueTransformProvider(ReloadableOptions<ResilienceOptions> options) : ITransformProvider
{
    public void ValidateRoute(TransformRouteValidationContext context)
    {
    }

    public void ValidateCluster(TransformClusterValidationContext context)
    {
    }

    public void Apply(TransformBuilderContext context)
    {
        var metadata = context.Cluster?.Metadata;
        context.AddRequestTransform(transform =>
        {
            var request = transform.ProxyRequest;
            if (request.Content is null || request.Headers.ExpectContinue == true || !MayBeHttp11(request)
                || HttpMethods.IsConnect(transform.HttpContext.Request.Method))
            {
                return ValueTask.CompletedTask; // no body, the client's own Expect, HTTP/2 only, or a WebSocket over HTTP/2
            }

            var above = ResilienceSettings.ExpectContinueAbove(options.Current, metadata);
            if (above > 0 && (transform.HttpContext.Request.ContentLength is not { } length || length > above))
            {
                request.Headers.ExpectContinue = true;
            }

            return ValueTask.CompletedTask;
        });
    }

    private static bool MayBeHttp11(HttpRequestMessage request)
        => request.Version.Major < 2 || request.VersionPolicy == HttpVersionPolicy.RequestVersionOrLower;
}
