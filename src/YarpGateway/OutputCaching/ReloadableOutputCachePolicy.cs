using Microsoft.AspNetCore.OutputCaching;
using Yarp.ReverseProxy.Model;

namespace YarpGateway.OutputCaching;

/// <summary>
/// A route's policy's own settings, read for each request from the last good ones (<see cref="OutputCachePolicies"/>):
/// how long an entry is served, which query parameters and headers key it, locking, and whether a request with cookies
/// skips the cache. ASP.NET Core's middleware keeps
/// the policies it was given at start-up, so each named policy is ASP.NET Core's default policy (only GET and HEAD, only
/// 200, ...), then this one, which does what the builder's expiration, vary and locking policies would, then
/// <see cref="BackendCacheControlPolicy"/>. The route's policy is the one YARP named in its endpoint's metadata.
/// </summary>
internal sealed class ReloadableOutputCachePolicy(OutputCachePolicies policies, OutputCacheLog log) : IOutputCachePolicy
{
    public ValueTask CacheRequestAsync(OutputCacheContext context, CancellationToken cancellation)
    {
        if (context.HttpContext.GetEndpoint()?.Metadata.GetMetadata<OutputCacheAttribute>()?.PolicyName is { } name
            && policies.Current(name) is { } settings)
        {
            if (settings.SkipsRequestsWithCookies && context.HttpContext.Request.Headers.Cookie.Count > 0)
            {
                // Not looked up, not stored, and the body not copied: as for a request the cache cannot serve.
                context.EnableOutputCaching = false;
                log.CookiesSkipped(context.HttpContext, name);
                return ValueTask.CompletedTask;
            }

            // Each route its own entries: two routes can match one URL (one for requests with a header, a canary's, and one
            // for the rest), and their backends' answers are not each other's. Keyed by URL alone, the second route's
            // clients were served the first one's answers.
            if (context.HttpContext.GetEndpoint()?.Metadata.GetMetadata<RouteModel>()?.Config.RouteId is { } route)
            {
                context.CacheVaryByRules.CacheKeyPrefix = route;
            }

            context.ResponseExpirationTimeSpan = settings.Duration;
            context.AllowLocking = settings.Locking;
            // In place of ASP.NET Core's query keys (the default policy's "*", every parameter), which fold names' case and
            // the order of a name's values together: the parameters as sent (OutputCacheQueryKey).
            context.CacheVaryByRules.QueryKeys = default;
            if (OutputCacheQueryKey.Of(context.HttpContext.Request.QueryString, settings.QueryKeys) is { } query)
            {
                context.CacheVaryByRules.VaryByValues[OutputCacheQueryKey.ValueName] = query;
            }

            if (settings.HeaderNames.Count > 0)
            {
                context.CacheVaryByRules.HeaderNames = settings.HeaderNames;
            }
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask ServeFromCacheAsync(OutputCacheContext context, CancellationToken cancellation) => ValueTask.CompletedTask;

    public ValueTask ServeResponseAsync(OutputCacheContext context, CancellationToken cancellation) => ValueTask.CompletedTask;
}
