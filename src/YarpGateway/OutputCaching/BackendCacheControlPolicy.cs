using Microsoft.AspNetCore.OutputCaching;
using Microsoft.Net.Http.Headers;

namespace YarpGateway.OutputCaching;

/// <summary>
/// The backend has the last word: a response with <c>Cache-Control: private</c>, <c>no-store</c> or
/// <c>no-cache</c> is not stored (ASP.NET Core's default policy does not look at it, as a framework
/// caching its own application's output need not).
/// </summary>
internal sealed class BackendCacheControlPolicy : IOutputCachePolicy
{
    public ValueTask CacheRequestAsync(OutputCacheContext context, CancellationToken cancellation) => ValueTask.CompletedTask;

    public ValueTask ServeFromCacheAsync(OutputCacheContext context, CancellationToken cancellation) => ValueTask.CompletedTask;

    public ValueTask ServeResponseAsync(OutputCacheContext context, CancellationToken cancellation)
    {
        var cacheControl = context.HttpContext.Response.Headers.CacheControl;
        if (cacheControl.Count > 0 && (HeaderUtilities.ContainsCacheDirective(cacheControl, CacheControlHeaderValue.PrivateString)
            || HeaderUtilities.ContainsCacheDirective(cacheControl, CacheControlHeaderValue.NoStoreString)
            || HeaderUtilities.ContainsCacheDirective(cacheControl, CacheControlHeaderValue.NoCacheString)))
        {
            context.AllowCacheStorage = false;
        }

        return ValueTask.CompletedTask;
    }
}
