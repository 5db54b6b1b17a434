using System.Net.Http.Headers;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;
using YarpGateway.Telemetry;
using YarpGateway.Configuration;

namespace YarpGateway.RequestFiltering;

/// <summary>
/// A backend response with a transfer coding other than <c>chunked</c> (<c>Transfer-Encoding: gzip, chunked</c>)
/// gets 502, as nginx answers it. HttpClient undoes only the chunking and YARP drops the hop-by-hop header, so the
/// client got the gzip bytes as a plain chunked body, told nothing of the coding (tried). Such responses are
/// rare (backends compress with <c>Content-Encoding</c>, which passes through); one line a second per cluster says
/// which destination sent one.
/// </summary>
internal sealed partial class ResponseTransferCodingTransformProvider(TimeProvider timeProvider, ILogger<ResponseTransferCodingTransformProvider> logger) : RouteTransformProvider
{
    private readonly LogThrottle _throttle = new(timeProvider, logger);

    public override void Apply(TransformBuilderContext context)
        => context.AddResponseTransform(transform =>
        {
            if (transform.ProxyResponse is { } response && OtherThanChunked(response.Headers.NonValidated) is { } codings)
            {
                var client = transform.HttpContext.Response;
                client.Headers.Clear();
                client.StatusCode = StatusCodes.Status502BadGateway;
                transform.SuppressResponseBody = true;
                var proxy = transform.HttpContext.GetReverseProxyFeature();
                var cluster = proxy.Cluster?.Config.ClusterId ?? "-";
                if (_throttle.ShouldLog(cluster, out var suppressed, LogLevel.Warning))
                {
                    Log.Refused(logger, proxy.ProxiedDestination?.DestinationId ?? "-", cluster, codings, suppressed);
                }
            }

            return ValueTask.CompletedTask;
        });

    /// <summary>
    /// The response's transfer codings, when one is not <c>chunked</c>; null when they are only that (or none). Read
    /// from the headers as received: most responses have none, and looking costs no allocation.
    /// </summary>
    internal static string? OtherThanChunked(HttpHeadersNonValidated headers)
    {
        if (!headers.TryGetValues("Transfer-Encoding", out var values))
        {
            return null;
        }

        foreach (var value in values)
        {
            foreach (var range in value.AsSpan().Split(','))
            {
                var coding = value.AsSpan(range).Trim();
                if (!coding.IsEmpty && !coding.Equals("chunked", StringComparison.OrdinalIgnoreCase))
                {
                    return values.ToString();
                }
            }
        }

        return null;
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "Destination {DestinationId} of cluster {ClusterId} answered with Transfer-Encoding '{Codings}', a coding other than chunked, which the gateway does not forward (its client would get the coded bytes as plain ones): answered 502. Compress with Content-Encoding instead. {Suppressed} more like it in the last second.", EventName = "ResponseTransferCodingRefused")]
        public static partial void Refused(ILogger logger, string destinationId, string clusterId, string codings, long suppressed);
    }
}
