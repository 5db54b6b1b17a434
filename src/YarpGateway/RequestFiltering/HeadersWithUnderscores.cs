using System.Net.Http.Headers;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;
using YarpGateway.Configuration;
using YarpGateway.Telemetry;

namespace YarpGateway.RequestFiltering;

/// <summary>
/// A client's request headers whose names hold an underscore are not forwarded, unless
/// <c>Gateway:RequestFiltering:UnderscoresInHeaders</c> is true. Backends that read headers the CGI way (WSGI,
/// Rack, PHP, many frameworks' dev servers) map <c>X_Forwarded_For</c> and <c>X-Forwarded-For</c> to the one
/// variable <c>HTTP_X_FORWARDED_FOR</c>, so a client could set, beside what the gateway sets, a header the
/// backend trusts because the gateway sets it (tried: the client's <c>X_Forwarded_For: 6.6.6.6</c> reached the
/// backend with the gateway's <c>X-Forwarded-For</c>). nginx drops such headers by default, and so does Apache
/// for CGI. Dropped before the route's own transforms run, so a route's <c>RequestHeader</c> transform may still
/// set one. The route still matches on what the client sent (<c>Match:Headers</c>, rate-limit partitions).
/// A scan of the forwarded headers' names per request, without allocation unless one is dropped; one log line
/// a minute at most says that it happens.
/// </summary>
internal sealed partial class HeadersWithUnderscores(IOptions<RequestFilteringOptions> options, TimeProvider timeProvider, ILogger<HeadersWithUnderscores> logger) : RouteTransformProvider
{
    private static readonly TimeSpan LogInterval = TimeSpan.FromMinutes(1);

    private readonly bool _forward = options.ValueOrNew().UnderscoresInHeaders; // a value that does not bind is listed at start
    private readonly OncePer _log = new(LogInterval, timeProvider);
    private long _dropped;

    public override void Apply(TransformBuilderContext context)
    {
        if (!_forward)
        {
            // First, so that it sees only what was copied from the client, before any transform of the route's.
            context.RequestTransforms.Insert(0, new RequestFuncTransform(Drop));
        }
    }

    private ValueTask Drop(RequestTransformContext transform)
    {
        var headers = transform.ProxyRequest.Headers;
        if (First(headers.NonValidated) is not { } name)
        {
            return ValueTask.CompletedTask;
        }

        var count = 0;
        for (var next = name; next is not null && headers.Remove(next); next = First(headers.NonValidated))
        {
            count++; // a name that could not be removed would be found again: stop there rather than loop
        }

        var dropped = Interlocked.Add(ref _dropped, count);
        if (_log.Now())
        {
            Interlocked.Add(ref _dropped, -dropped);
            Log.Dropped(logger, name, transform.HttpContext.GetReverseProxyFeature().Route.Config.RouteId, dropped);
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>The first header whose name holds an underscore; null when none does.</summary>
    internal static string? First(HttpHeadersNonValidated headers)
    {
        foreach (var header in headers)
        {
            if (header.Key.Contains('_'))
            {
                return header.Key;
            }
        }

        return null;
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Request headers whose names hold an underscore are not forwarded ({Header} on route {RouteId}): {Count} dropped since the last such line. Backends that read headers the CGI way take X_Forwarded_For for X-Forwarded-For. Set Gateway:RequestFiltering:UnderscoresInHeaders to true to forward them. At most one such line a minute.", EventName = "HeaderWithUnderscoreDropped")]
        public static partial void Dropped(ILogger logger, string header, string routeId, long count);
    }
}
