using System.Collections.Concurrent;
using Microsoft.AspNetCore.OutputCaching;
using Microsoft.Extensions.Primitives;
using Microsoft.Net.Http.Headers;
using Yarp.ReverseProxy.Model;

namespace YarpGateway.OutputCaching;

/// <summary>
/// The backend has the last word, as it has with a shared HTTP cache (RFC 9111):
/// <list type="bullet">
/// <item>a response with <c>Cache-Control: private</c>, <c>no-store</c> or <c>no-cache</c> is not stored;</item>
/// <item>a response whose <c>Vary</c> names a request header the policy does not vary by (or is <c>*</c>) is
/// not stored either: its entry would be keyed without that header, and served to clients that sent another
/// value (a gzip body to a client that cannot read it, one language to everyone). The route is named in the
/// log once per header, so an operator can add the header to the policy's <c>VaryByHeader</c>.</item>
/// </list>
/// ASP.NET Core's default policy looks at neither, as a framework caching its own application's output need not.
/// </summary>
internal sealed partial class BackendCacheControlPolicy(ILogger<BackendCacheControlPolicy> logger) : IOutputCachePolicy
{
    /// <summary>Routes and headers already named in the log; bounded, since the header names come from backends.</summary>
    internal const int MaxLogged = 1000;

    private readonly ConcurrentDictionary<(string Route, string Header), byte> _logged = new();

    public ValueTask CacheRequestAsync(OutputCacheContext context, CancellationToken cancellation) => ValueTask.CompletedTask;

    public ValueTask ServeFromCacheAsync(OutputCacheContext context, CancellationToken cancellation) => ValueTask.CompletedTask;

    public ValueTask ServeResponseAsync(OutputCacheContext context, CancellationToken cancellation)
    {
        var headers = context.HttpContext.Response.Headers;
        var cacheControl = headers.CacheControl;
        if (cacheControl.Count > 0 && (HeaderUtilities.ContainsCacheDirective(cacheControl, CacheControlHeaderValue.PrivateString)
            || HeaderUtilities.ContainsCacheDirective(cacheControl, CacheControlHeaderValue.NoStoreString)
            || HeaderUtilities.ContainsCacheDirective(cacheControl, CacheControlHeaderValue.NoCacheString)))
        {
            context.AllowCacheStorage = false;
        }
        else if (headers.Vary.Count > 0 && FirstUnkeyedVary(headers.Vary, context.CacheVaryByRules.HeaderNames) is { } header)
        {
            context.AllowCacheStorage = false;
            LogOnce(context.HttpContext, header);
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>The first header <paramref name="vary"/> names that <paramref name="keyed"/> does not hold (<c>*</c> is never keyed); null if none.</summary>
    internal static string? FirstUnkeyedVary(StringValues vary, StringValues keyed)
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

                if (name is "*" || !Contains(keyed, name))
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

    private void LogOnce(HttpContext context, string header)
    {
        var route = context.GetEndpoint()?.Metadata.GetMetadata<RouteModel>()?.Config;
        var routeId = route?.RouteId ?? "-";
        if (_logged.Count < MaxLogged && _logged.TryAdd((routeId, header.ToLowerInvariant()), 0))
        {
            if (header == "*")
            {
                Log.VaryStar(logger, routeId);
            }
            else
            {
                Log.VaryNotKeyed(logger, routeId, header, route?.OutputCachePolicy ?? "-");
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "Output cache: responses on route '{Route}' say 'Vary: {Header}', and output-cache policy '{Policy}' does not vary by '{Header}', so they are passed through and not stored (one stored entry would be served to clients that sent another '{Header}'). Add '{Header}' to the policy's VaryByHeader to cache one entry per value. Logged once per route and header.", EventName = "OutputCacheVaryNotKeyed")]
        public static partial void VaryNotKeyed(ILogger logger, string route, string header, string policy);

        [LoggerMessage(2, LogLevel.Warning, "Output cache: responses on route '{Route}' say 'Vary: *', so they are passed through and never stored. Logged once per route.", EventName = "OutputCacheVaryAll")]
        public static partial void VaryStar(ILogger logger, string route);
    }
}
