using System.Text;

namespace YarpGateway.RequestFiltering;

/// <summary>
/// A path is routed with each run of slashes read as one (<c>//admin/x</c> as <c>/admin/x</c>), as nginx matches its
/// locations (<c>merge_slashes on</c>, its default), and then goes on as sent. Routing reads an empty segment as a
/// segment: <c>//admin/x</c> did not match a route <c>/admin/{**rest}</c>, a catch-all beside it took it, without the
/// <c>/admin</c> route's policies, and a backend that merges slashes served it as <c>/admin/x</c> (nginx does, tried; so do
/// Tomcat and Apache by default). Only routing sees the merged path: the path is put back once a route is chosen, so
/// the backend gets it as the client sent it (as nginx's <c>proxy_pass</c> without a URI sends it; a path that holds a
/// URL, <c>/thumb/http://example.com/a.png</c>, keeps its <c>//</c>), and the output cache keys on it as sent. The
/// route's path transforms work on the merged path, as nginx's <c>proxy_pass</c> with a URI does: a <c>PathPattern</c>'s
/// <c>{**rest}</c> is routing's value, and <see cref="MergedSlashesTransformProvider"/> gives <c>PathRemovePrefix</c> and
/// <c>PathPrefix</c> the merged path.
/// Per request a search for <c>//</c> and, after routing, a feature lookup; a path that has one gets a new string and
/// the feature.
/// </summary>
internal static class RoutedWithMergedSlashes
{
    /// <summary>Before routing: a path with <c>//</c> is given to routing merged, the one sent kept.</summary>
    public static Func<RequestDelegate, RequestDelegate> BeforeRouting => next => context =>
    {
        var request = context.Request;
        if (request.Path.Value is { } path && path.Contains("//", StringComparison.Ordinal))
        {
            context.Features.Set(new SentPath(request.Path));
            request.Path = new PathString(Merge(path));
        }

        return next(context);
    };

    /// <summary><paramref name="path"/> as routing reads it: with each run of slashes made one (itself when it has none). For the transforms that follow routing.</summary>
    internal static PathString Merged(PathString path)
        => path.Value is { } value && value.Contains("//", StringComparison.Ordinal) ? new PathString(Merge(value)) : path;

    /// <summary>After routing: the path as sent again, for everything that follows (policies, the cache, the proxy).</summary>
    public static Func<RequestDelegate, RequestDelegate> AfterRouting => next => context =>
    {
        if (context.Features.Get<SentPath>() is { } sent)
        {
            context.Request.Path = sent.Path;
        }

        return next(context);
    };

    /// <summary><paramref name="path"/> with each run of slashes made one.</summary>
    internal static string Merge(string path)
    {
        var merged = new StringBuilder(path.Length);
        foreach (var c in path)
        {
            if (c != '/' || merged.Length == 0 || merged[^1] != '/')
            {
                merged.Append(c);
            }
        }

        return merged.ToString();
    }

    /// <summary>The path as the client sent it, while routing reads it merged.</summary>
    private sealed class SentPath(PathString path)
    {
        public PathString Path { get; } = path;
    }
}
