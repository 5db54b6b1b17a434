using System.Collections.Concurrent;
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
/// Only where the backend connection is HTTP/1.1 (a plain-http destination, unless the cluster asks for HTTP/2; an
/// https one when the cluster asks for HTTP/1.1, or once its last answer came over HTTP/1.1, since ALPN picks
/// HTTP/2 where the backend has it): an HTTP/2 backend's early answer arrives whatever the body does, and a gRPC
/// server need not answer <c>Expect</c>. So an https destination's uploads before its first answer go without.
/// Bodies of unknown length only from HTTP/1.1 clients (chunked), never a stream of an HTTP/2 client. Never over a
/// client's own <c>Expect</c>, which YARP forwards as it is.
/// <para>
/// A destination that answers such a request <c>417 Expectation Failed</c> (servers from before 100-continue was
/// common) is sent no more <c>Expect</c> from then on, and one line says so: RFC 9110 has the client repeat the
/// request without it, which the gateway cannot do for a body it streams, so that one upload gets the 417.
/// </para>
/// </summary>
internal sealed partial class ExpectContinueTransformProvider(ReloadableOptions<ResilienceOptions> options, ILogger<ExpectContinueTransformProvider> logger) : RouteTransformProvider
{
    // Destinations (by address) that answered 417 to the gateway's Expect: as many as the configuration has, at most.
    private readonly ConcurrentDictionary<string, byte> _refused = new(StringComparer.OrdinalIgnoreCase);

    // https destinations (by address) whose last answer came over HTTP/1.1, as ALPN chose: as many as the configuration has.
    private readonly ConcurrentDictionary<string, byte> _answersOverHttp11 = new(StringComparer.OrdinalIgnoreCase);

    public override void Apply(TransformBuilderContext context)
    {
        var metadata = context.Cluster?.Metadata;
        context.AddRequestTransform(transform =>
        {
            var request = transform.ProxyRequest;
            if (request.Content is null || request.Headers.ExpectContinue == true
                || !(Endpoints.BackendHttpVersion.IsHttp11(transform.DestinationPrefix, request.Version, request.VersionPolicy) || _answersOverHttp11.ContainsKey(transform.DestinationPrefix)))
            {
                return ValueTask.CompletedTask; // no body, the client's own Expect, or a backend that may speak HTTP/2
            }

            var client = transform.HttpContext.Request;
            var above = ResilienceSettings.ExpectContinueAbove(options.Current, metadata);
            if (above > 0 && (client.ContentLength is { } length ? length > above : client.Headers.TransferEncoding.Count > 0)
                && !_refused.ContainsKey(transform.DestinationPrefix))
            {
                request.Headers.ExpectContinue = true;
            }

            return ValueTask.CompletedTask;
        });
        context.AddResponseTransform(transform =>
        {
            if (transform.ProxyResponse is { RequestMessage.RequestUri: { } uri } answer && uri.Scheme == Uri.UriSchemeHttps)
            {
                Learn(transform.HttpContext, answer.Version);
            }

            if (transform.ProxyResponse is { StatusCode: System.Net.HttpStatusCode.ExpectationFailed, RequestMessage: { } sent }
                && sent.Headers.ExpectContinue == true && transform.HttpContext.Request.Headers.Expect.Count == 0)
            {
                Refused(transform.HttpContext);
            }

            return ValueTask.CompletedTask;
        });
    }

    // What ALPN chose for an https destination, as its answers say: only a change writes.
    private void Learn(HttpContext context, Version version)
    {
        if (context.Features.Get<Yarp.ReverseProxy.Model.IReverseProxyFeature>()?.ProxiedDestination is not { } destination)
        {
            return;
        }

        var address = destination.Model.Config.Address;
        if (version.Major == 1)
        {
            if (!_answersOverHttp11.ContainsKey(address))
            {
                _answersOverHttp11.TryAdd(address, 0);
            }
        }
        else if (_answersOverHttp11.ContainsKey(address))
        {
            _answersOverHttp11.TryRemove(address, out _);
        }
    }

    // Keyed by the destination's address, which is what YARP gives the request transform as its prefix.
    private void Refused(HttpContext context)
    {
        if (context.Features.Get<Yarp.ReverseProxy.Model.IReverseProxyFeature>()?.ProxiedDestination is { } destination
            && _refused.TryAdd(destination.Model.Config.Address, 0))
        {
            Log.Refused(logger, destination.DestinationId, destination.Model.Config.Address);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "Destination {DestinationId} ({Address}) answered 417 Expectation Failed to an upload the gateway sent with Expect: 100-continue; that upload got the 417, and the gateway sends this destination no more Expect (until it restarts). Set the cluster's metadata ExpectContinueAbove to 0 to say so in the configuration.", EventName = "ExpectContinueRefused")]
        public static partial void Refused(ILogger logger, string destinationId, string address);
    }
}
