using System.Collections.Concurrent;
using Yarp.ReverseProxy.Model;

namespace YarpGateway.OutputCaching;

/// <summary>
/// Names, once per route (and header), the routes whose traffic passes the cache by: responses not stored because their
/// <c>Vary</c> names a header the policy does not vary by, or because they set a cookie, and requests that skip it because
/// they carry cookies. One per gateway: ASP.NET Core builds its own instance of each named policy.
/// </summary>
internal sealed partial class OutputCacheLog(ILogger<OutputCacheLog> logger)
{
    /// <summary>Routes and headers already named; bounded, since the header names come from backends.</summary>
    internal const int MaxLogged = 1000;

    private readonly ConcurrentDictionary<(string Route, string Header), byte> _logged = new();
    private readonly ConcurrentDictionary<string, byte> _cookieRoutes = new();
    private readonly ConcurrentDictionary<string, byte> _setCookieRoutes = new();

    /// <summary>A response that sets a cookie was not stored.</summary>
    public void SetsCookie(HttpContext context, string? setCookie)
    {
        var route = context.GetEndpoint()?.Metadata.GetMetadata<RouteModel>();
        var routeId = route?.Config.RouteId ?? "-";
        if (_setCookieRoutes.Count < MaxLogged && _setCookieRoutes.TryAdd(routeId, 0))
        {
            var cookie = setCookie.AsSpan();
            var equals = cookie.IndexOf('=');
            var name = (equals < 0 ? cookie : cookie[..equals]).Trim().ToString();
            var affinity = route?.Cluster?.Model.Config.SessionAffinity is { Enabled: true } config
                && string.Equals(config.AffinityKeyName, name, StringComparison.Ordinal);
            Log.SetsCookie(logger, routeId, name, affinity
                ? $" It is the session-affinity cookie of cluster '{route!.Cluster!.ClusterId}': every new client's first response sets it, and returning clients send it, so set the policy's CacheRequestsWithCookies to cache their requests."
                : string.Empty);
        }
    }

    /// <summary>A request with a <c>Cookie</c> header skipped the cache of its route's policy.</summary>
    public void CookiesSkipped(HttpContext context, string policy)
    {
        var routeId = context.GetEndpoint()?.Metadata.GetMetadata<RouteModel>()?.Config.RouteId ?? "-";
        if (_cookieRoutes.Count < MaxLogged && _cookieRoutes.TryAdd(routeId, 0))
        {
            Log.CookiesSkipped(logger, routeId, policy);
        }
    }

    public void NotStored(HttpContext context, string header)
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

        [LoggerMessage(3, LogLevel.Information, "Output cache: requests on route '{Route}' that carry a Cookie header skip the cache of policy '{Policy}' (a page built for one session must not be served to another). If its backend's answers do not depend on cookies, set the policy's CacheRequestsWithCookies; to cache one entry per cookie value, add 'Cookie' to its VaryByHeader. Logged once per route.", EventName = "OutputCacheCookiesSkipped")]
        public static partial void CookiesSkipped(ILogger logger, string route, string policy);

        [LoggerMessage(4, LogLevel.Information, "Output cache: a response on route '{Route}' sets cookie '{Cookie}', so it is passed through and not stored (a stored entry would give one client's cookie to every client), as every response that sets a cookie.{Affinity} Logged once per route.", EventName = "OutputCacheSetCookieNotStored")]
        public static partial void SetsCookie(ILogger logger, string route, string cookie, string affinity);
    }
}
