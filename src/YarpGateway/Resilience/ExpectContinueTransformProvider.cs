using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;
using YarpGateway.Configuration;

namespace YarpGateway.Resilience;

/// <summary>
/// Sends a request body larger than <see cref="ResilienceOptions.ExpectContinueAbove"/> (64 KiB; cluster metadata
/// <c>ExpectContinueAbove</c>), or chunked, with <c>Expect: 100-continue</c>, so that a backend which answers
/// before it reads the body (413 for an upload over its limit, 401 for a missing token) is heard.
/// <para>
/// Without it, a backend that answers early and closes the connection with the body unread resets it, and
/// <c>SocketsHttpHandler</c> reports the failed write instead of the response it already received
/// (dotnet/runtime#119350): the client got 502 for the backend's 413, and the destination was counted as failing.
/// Tried on loopback with a backend that answers 401 and closes: bodies of 200 KB got 502 about one time in four,
/// bodies of 300 KB and more almost always; nginx passed the 401. With <c>Expect</c>, the handler waits for
/// <c>100 Continue</c> or the final answer before it sends the body (for a backend that ignores <c>Expect</c>, up to
/// <see cref="GatewayHttpClientFactory.ExpectContinueTimeout"/>; then it sends the body anyway).
/// </para>
/// Only where the backend connection is HTTP/1.1 for certain (a plain-http destination, unless the cluster asks for
/// HTTP/2; an https one only when the cluster asks for HTTP/1.1, since ALPN picks HTTP/2 where the backend has it):
/// an HTTP/2 backend's early answer arrives whatever the body does, and a gRPC server need not answer <c>Expect</c>.
/// Bodies of unknown length only from HTTP/1.1 clients (chunked), never a stream of an HTTP/2 client. Never over a
/// client's own <c>Expect</c>, which YARP forwards as it is.
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
            if (request.Content is null || request.Headers.ExpectContinue == true || !IsHttp11(transform.DestinationPrefix, request.Version, request.VersionPolicy))
            {
                return ValueTask.CompletedTask; // no body, the client's own Expect, or a backend that may speak HTTP/2
            }

            var client = transform.HttpContext.Request;
            var above = ResilienceSettings.ExpectContinueAbove(options.Current, metadata);
            if (above > 0 && (client.ContentLength is { } length ? length > above : client.Headers.TransferEncoding.Count > 0))
            {
                request.Headers.ExpectContinue = true;
            }

            return ValueTask.CompletedTask;
        });
    }

    // Whether HttpClient speaks HTTP/1.1 to the destination for certain. Without TLS there is no ALPN: HTTP/2 only with
    // prior knowledge (2.0 and a policy other than RequestVersionOrLower, which YARP's default is).
    internal static bool IsHttp11(string destinationPrefix, Version version, HttpVersionPolicy policy)
        => destinationPrefix.StartsWith("http://", StringComparison.OrdinalIgnoreCase)
            ? version.Major < 2 || policy == HttpVersionPolicy.RequestVersionOrLower
            : version.Major < 2 && policy != HttpVersionPolicy.RequestVersionOrHigher;
}
