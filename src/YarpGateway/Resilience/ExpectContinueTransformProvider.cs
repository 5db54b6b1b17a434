using System.Runtime.CompilerServices;
using Yarp.ReverseProxy.Model;
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
    // What the answers said of each destination, for as long as YARP keeps it (destinations found by DNS come and go).
    private readonly ConditionalWeakTable<DestinationState, Learned> _learned = new();

    public override void Apply(TransformBuilderContext context)
    {
        var metadata = context.Cluster?.Metadata;
        context.AddRequestTransform(transform =>
        {
            var request = transform.ProxyRequest;
            if (request.Content is null || request.Headers.ExpectContinue == true)
            {
                return ValueTask.CompletedTask; // no body, or the client's own Expect
            }

            var client = transform.HttpContext.Request;
            var above = ResilienceSettings.ExpectContinueAbove(options.Current, metadata);
            if (above <= 0 || !(client.ContentLength is { } length ? length > above : client.Headers.TransferEncoding.Count > 0))
            {
                return ValueTask.CompletedTask; // a small body, or Expect turned off: most uploads end here, with no lookup
            }

            var learned = LearnedOf(transform.HttpContext);
            if ((Endpoints.BackendHttpVersion.IsHttp11(transform.DestinationPrefix, request.Version, request.VersionPolicy) || learned is { AnswersOverHttp11: true })
                && learned is not { Refused: true })
            {
                request.Headers.ExpectContinue = true; // else a backend that may speak HTTP/2, or one that answered 417
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

    // What was learned of the destination at its current address: one whose address is edited is another backend.
    private Learned? LearnedOf(HttpContext context)
        => context.Features.Get<IReverseProxyFeature>()?.ProxiedDestination is { } destination && _learned.TryGetValue(destination, out var learned)
            && string.Equals(learned.Address, destination.Model.Config.Address, StringComparison.Ordinal) ? learned : null;

    private Learned LearnedFor(DestinationState destination)
    {
        var address = destination.Model.Config.Address;
        var learned = _learned.GetValue(destination, _ => new Learned(address));
        if (!string.Equals(learned.Address, address, StringComparison.Ordinal))
        {
            learned = new Learned(address);
            _learned.AddOrUpdate(destination, learned);
        }

        return learned;
    }

    // What ALPN chose for an https destination, as its answers say.
    private void Learn(HttpContext context, Version version)
    {
        if (context.Features.Get<IReverseProxyFeature>()?.ProxiedDestination is { } destination)
        {
            var overHttp11 = version.Major == 1;
            if (overHttp11 || _learned.TryGetValue(destination, out _))
            {
                LearnedFor(destination).AnswersOverHttp11 = overHttp11;
            }
        }
    }

    private void Refused(HttpContext context)
    {
        if (context.Features.Get<IReverseProxyFeature>()?.ProxiedDestination is { } destination)
        {
            var learned = LearnedFor(destination);
            if (!learned.Refused)
            {
                learned.Refused = true;
                Log.Refused(logger, destination.DestinationId, destination.Model.Config.Address);
            }
        }
    }

    private sealed class Learned(string address)
    {
        public readonly string Address = address;

        // Written by one response and read by the next request: a stale read only means one request more or less with Expect.
        public volatile bool AnswersOverHttp11;
        public volatile bool Refused;
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "Destination {DestinationId} ({Address}) answered 417 Expectation Failed to an upload the gateway sent with Expect: 100-continue; that upload got the 417, and the gateway sends this destination no more Expect (until it restarts, or its address is edited). Set the cluster's metadata ExpectContinueAbove to 0 to say so in the configuration.", EventName = "ExpectContinueRefused")]
        public static partial void Refused(ILogger logger, string destinationId, string address);
    }
}
