using Microsoft.AspNetCore.OutputCaching;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Microsoft.Net.Http.Headers;
using YarpGateway.Configuration;

namespace YarpGateway.OutputCaching;

/// <summary>
/// The backend has the last word, as it has with a shared HTTP cache (RFC 9111):
/// <list type="bullet">
/// <item>a response with <c>Cache-Control: private</c>, <c>no-store</c> or <c>no-cache</c> is not stored;</item>
/// <item>its <c>s-maxage</c> or <c>max-age</c> (less its <c>Age</c>) sets how long the entry is served, in place of the
/// policy's <c>Duration</c>, and zero means it is not stored;</item>
/// <item>a response whose <c>Vary</c> names a request header the policy does not vary by (or is <c>*</c>) is
/// not stored either: its entry would be keyed without that header, and served to clients that sent another
/// value (a gzip body to a client that cannot read it, one language to everyone). The route is named in the
/// log once per header, so an operator can add the header to the policy's <c>VaryByHeader</c>.</item>
/// </list>
/// A response that sets a cookie is not stored (ASP.NET Core's rule: it would hand one client's cookie to the next), and
/// the route is named in the log once, with the cookie, since its traffic then passes the cache by: a session-affinity
/// cluster sets its cookie on every new client's response.
/// And two the gateway knows from the headers will never be stored, so that ASP.NET Core's cache does not copy their
/// bodies while they are sent (up to <c>MaximumBodySize</c> per response, held as long as its client takes to read
/// it): a <c>Content-Length</c> over <c>MaximumBodySize</c>, and a stream of events (<c>text/event-stream</c>), which
/// has no end to store and whose events are not for replaying to later clients.
/// ASP.NET Core's default policy looks at none of these, as a framework caching its own application's output need not.
/// </summary>
internal sealed class BackendCacheControlPolicy(OutputCacheLog log, IOptions<GatewayOutputCacheOptions> options) : IOutputCachePolicy
{
    private readonly long _maximumBodySize = options.ValueOrNew().MaximumBodySize;

    /// <summary>
    /// A request for a stream of events (<c>Accept: text/event-stream</c>, as a browser's <c>EventSource</c> sends)
    /// skips the cache: there is nothing to look up, and with <c>Locking</c> it would wait for another client's stream to end.
    /// So does a WebSocket's handshake (or SPDY's), a GET like any other to ASP.NET Core's cache: with <c>Locking</c>, a
    /// second client's handshake to a URL waited for the first client's WebSocket to close (4.7 s for one held 5 s).
    /// So does a HEAD: ASP.NET Core's cache keys it apart from the GET and stores its answer with its empty body, and
    /// served that entry with <c>Content-Length: 0</c> (tried: a 239-byte file's second HEAD said 0, the backend 239).
    /// And so does a request for a range (<c>Range</c>): ASP.NET Core's cache answers it from a stored GET with the whole
    /// body as a 200, where the backend answers 206 with the range (a video player's requests; Safari plays nothing without).
    /// </summary>
    public ValueTask CacheRequestAsync(OutputCacheContext context, CancellationToken cancellation)
    {
        var request = context.HttpContext.Request;
        if (HttpMethods.IsHead(request.Method) || request.Headers.Range.Count > 0 || Endpoints.LongLivedRequest.Is(context.HttpContext))
        {
            context.EnableOutputCaching = false;
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask ServeFromCacheAsync(OutputCacheContext context, CancellationToken cancellation) => ValueTask.CompletedTask;

    /// <summary>
    /// For a response without a body, and a second look at one whose headers
    /// <see cref="OutputCacheResponseTransformProvider"/> already judged (the judgement is the same).
    /// </summary>
    public ValueTask ServeResponseAsync(OutputCacheContext context, CancellationToken cancellation)
    {
        Judge(context, started: true);
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Whether the response's headers allow it to be stored, and for how long. To set the entry's lifetime this must
    /// run before the first byte of the body is written, when ASP.NET Core's cache reads it: for proxied responses
    /// that is YARP's response transform; <see cref="ServeResponseAsync"/> runs after the whole body. Once the response has
    /// <paramref name="started"/>, a route's CORS policy has added its own <c>Vary: Origin</c>, which does not stop the
    /// response being stored: the policy answers each request's <c>Origin</c> again, a hit's included. (Before, no answer
    /// to a browser's request with an allowed origin was ever stored on such a route, and the log told the operator to key
    /// entries by <c>Origin</c>. A backend's own <c>Vary: Origin</c> is judged before the start, as any other.)
    /// </summary>
    internal void Judge(OutputCacheContext context, bool started = false)
    {
        var headers = context.HttpContext.Response.Headers;
        var cacheControl = headers.CacheControl;
        if (context.HttpContext.Response.ContentLength > _maximumBodySize || IsEventStream(headers.ContentType))
        {
            context.AllowCacheStorage = false;
        }
        else if (headers.SetCookie.Count > 0)
        {
            // ASP.NET Core's default policy refuses it too, without a word.
            context.AllowCacheStorage = false;
            log.SetsCookie(context.HttpContext, headers.SetCookie[0]);
        }
        else if (cacheControl.Count > 0 && (HeaderUtilities.ContainsCacheDirective(cacheControl, CacheControlHeaderValue.PrivateString)
            || HeaderUtilities.ContainsCacheDirective(cacheControl, CacheControlHeaderValue.NoStoreString)
            || HeaderUtilities.ContainsCacheDirective(cacheControl, CacheControlHeaderValue.NoCacheString)))
        {
            context.AllowCacheStorage = false;
        }
        else if (headers.Vary.Count > 0
            && FirstUnkeyedVary(headers.Vary, context.CacheVaryByRules.HeaderNames, started && HasCorsPolicy(context.HttpContext) ? HeaderNames.Origin : null) is { } header)
        {
            context.AllowCacheStorage = false;
            log.NotStored(context.HttpContext, header);
        }
        else if (cacheControl.Count > 0 && Freshness(cacheControl, headers.Age) is { } lifetime)
        {
            if (lifetime > TimeSpan.Zero)
            {
                context.ResponseExpirationTimeSpan = lifetime;
            }
            else
            {
                context.AllowCacheStorage = false;
            }
        }
    }

    internal static bool IsEventStream(StringValues contentType)
        => contentType.Count > 0 && contentType[0] is { } type && type.AsSpan().TrimStart().StartsWith(Endpoints.LongLivedRequest.EventStream, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// How long the backend says its response stays fresh in a shared cache: <c>s-maxage</c>, else <c>max-age</c>,
    /// less its <c>Age</c> (the time it already spent in a cache behind us); null if it says neither.
    /// </summary>
    internal static TimeSpan? Freshness(StringValues cacheControl, StringValues age)
    {
        if (!HeaderUtilities.TryParseSeconds(cacheControl, CacheControlHeaderValue.SharedMaxAgeString, out var lifetime)
            && !HeaderUtilities.TryParseSeconds(cacheControl, CacheControlHeaderValue.MaxAgeString, out lifetime))
        {
            return null;
        }

        if (age.Count > 0 && HeaderUtilities.TryParseNonNegativeInt64(age.ToString(), out var ageSeconds))
        {
            lifetime -= TimeSpan.FromSeconds(Math.Min(ageSeconds, (long)lifetime!.Value.TotalSeconds));
        }

        return lifetime;
    }

    private static bool HasCorsPolicy(HttpContext context)
        => context.GetEndpoint()?.Metadata.GetMetadata<Microsoft.AspNetCore.Cors.Infrastructure.ICorsMetadata>() is Microsoft.AspNetCore.Cors.Infrastructure.IEnableCorsAttribute;

    /// <summary>
    /// The first header <paramref name="vary"/> names that <paramref name="keyed"/> does not hold (<c>*</c> is never keyed),
    /// leaving out <paramref name="ignored"/>; null if none.
    /// </summary>
    internal static string? FirstUnkeyedVary(StringValues vary, StringValues keyed, string? ignored = null)
    {
        foreach (var value in vary)
        {
            foreach (var range in value.AsSpan().Split(','))
            {
                var name = value.AsSpan(range).Trim();
                if (name.IsEmpty)
                {
                    continue;
                }

                if (name is "*" || (!Contains(keyed, name) && !name.Equals(ignored, StringComparison.OrdinalIgnoreCase)))
                {
                    return name.ToString();
                }
            }
        }

        return null;
    }

    private static bool Contains(StringValues keyed, ReadOnlySpan<char> name)
    {
        foreach (var k in keyed)
        {
            if (name.Equals(k, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }
}
