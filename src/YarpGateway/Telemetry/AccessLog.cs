using System.Buffers;
using System.Globalization;
using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Model;
using YarpGateway.Configuration;

namespace YarpGateway.Telemetry;

/// <summary>
/// The access log: when <see cref="TelemetryOptions.AccessLog"/> is on, one line per request on the proxy endpoint as it
/// ends, in the <c>key=value</c> form of the <c>saturation</c> line, e.g.
/// <c>access client=203.0.113.7 method=GET path=/api/orders protocol=HTTP/2 status=200 ms=3.2 route=api cluster=orders destination=orders[10.1.2.3] trace=0af7651916cd43dd8448eb211c80319c id=5f0c1e2d9a8b4c7d8e6f5a4b3c2d1e0f</c>.
/// <list type="bullet">
/// <item>Every request the proxy endpoint's pipeline sees, those the gateway answers itself included (a 400 for an
/// ambiguous path, an admission 503, the 404 of no route); a WebSocket's line comes when it closes, with its life as
/// <c>ms</c>. Kestrel's own refusals of what is not HTTP never reach it (its throttled log has those).</item>
/// <item><c>path</c> is the target as the client sent it, without the query (it may carry a token), at most
/// <see cref="MaxPathLength"/> characters, any control character or space as <c>?</c>: a line cannot be split or
/// forged by a request.</item>
/// <item><c>status</c> is 499 for a client that left before any answer (nginx's code), and 500 for a request that failed
/// before one.</item>
/// <item><c>client</c> is the client's address as the gateway trusts it (<c>X-Forwarded-For</c> only from trusted
/// proxies); <c>trace</c> the trace id of the client's <c>traceparent</c>, which reaches the backend unchanged, so the
/// line is found from a backend's trace; <c>-</c> when there is none. <c>id</c> is the request's id
/// (<see cref="RequestId"/>; with it off, a well-formed one the request brought in the same header), or <c>-</c>.</item>
/// </list>
/// The line goes to standard output through <see cref="AccessLogWriter"/>, in batches, not through the logger (which
/// cost 26 µs of CPU per request): it is the same <c>key=value</c> line (logfmt) whatever <c>Logging:Console:FormatterName</c>
/// says. Off, it costs one read of the options per request. On, a request keeps a frame of its own (a WebSocket for its
/// life) and formats a line: the performance history has the price.
/// </summary>
internal sealed class AccessLog(ReloadableOptions<TelemetryOptions> options, AccessLogWriter writer, TimeProvider timeProvider)
{
    internal const int MaxPathLength = 512;

    private static readonly SearchValues<char> LowerHex = SearchValues.Create("0123456789abcdef");

    private static readonly SearchValues<char> Unsafe = SearchValues.Create([.. Enumerable.Range(0, 0x21).Select(c => (char)c), '\u007f']);

    public Func<RequestDelegate, RequestDelegate> Middleware => next => context
        => options.Current.AccessLog ? LogAsync(context, next) : next(context);

    private async Task LogAsync(HttpContext context, RequestDelegate next)
    {
        var started = timeProvider.GetTimestamp();
        var failed = true;
        try
        {
            await next(context);
            failed = false;
        }
        finally
        {
            Write(context, timeProvider.GetElapsedTime(started), failed);
        }
    }

    private void Write(HttpContext context, TimeSpan elapsed, bool failed)
    {
        var response = context.Response;
        var status = response.HasStarted ? response.StatusCode
            : context.RequestAborted.IsCancellationRequested ? 499 // the client left first, whatever failed then
            : failed ? StatusCodes.Status500InternalServerError
            : response.StatusCode;
        var proxy = context.Features.Get<IReverseProxyFeature>();
        writer.Enqueue(Line(
            context.Connection.RemoteIpAddress?.ToString() ?? "-",
            context.Request.Method,
            PathOf(context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? context.Request.Path.Value ?? "/"),
            context.Request.Protocol,
            status,
            elapsed,
            proxy?.Route.Config.RouteId ?? context.GetEndpoint()?.Metadata.GetMetadata<RouteModel>()?.Config.RouteId ?? "-", // refused before the proxy: CORS, 401, 403, 429
            proxy?.Cluster?.Config.ClusterId ?? "-",
            proxy?.ProxiedDestination?.DestinationId ?? "-",
            TraceIdOf(context.Request.Headers.TraceParent.ToString()),
            RequestId.Of(context, options.Current.RequestIdHeader)));
    }

    internal static string Line(string client, string method, string path, string protocol, int status, TimeSpan elapsed, string route, string cluster, string destination, string traceId, string requestId)
        => string.Create(CultureInfo.InvariantCulture,
            $"access client={client} method={method} path={path} protocol={protocol} status={status} ms={elapsed.TotalMilliseconds:0.0} route={route} cluster={cluster} destination={destination} trace={traceId} id={requestId}");

    /// <summary>The target as sent, without its query, bounded, with nothing in it that could split or forge a line.</summary>
    internal static string PathOf(string target)
    {
        var end = target.IndexOf('?');
        var path = target.AsSpan(0, end < 0 ? target.Length : end);
        var cut = path.Length > MaxPathLength;
        if (cut)
        {
            path = path[..MaxPathLength];
        }

        if (!cut && path.Length == target.Length && path.IndexOfAny(Unsafe) < 0)
        {
            return target;
        }

        return string.Create(path.Length + (cut ? 3 : 0), (target, path.Length, cut), static (span, state) =>
        {
            var (target, length, cut) = state;
            for (var i = 0; i < length; i++)
            {
                var c = target[i];
                span[i] = c < 0x21 || c == '\u007f' ? '?' : c;
            }

            if (cut)
            {
                "...".AsSpan().CopyTo(span[length..]);
            }
        });
    }

    /// <summary>The trace id of a W3C <c>traceparent</c> (<c>00-{32 hex}-{16 hex}-{2 hex}</c>), or <c>-</c>.</summary>
    internal static string TraceIdOf(string traceParent)
        => traceParent.Length >= 55 && traceParent[2] == '-' && traceParent[35] == '-' && !traceParent.AsSpan(3, 32).ContainsAnyExcept(LowerHex)
            ? traceParent.Substring(3, 32)
            : "-";
}
