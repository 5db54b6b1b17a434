using System.Buffers;
using Microsoft.AspNetCore.Http.Features;
using YarpGateway.Telemetry;

namespace YarpGateway.RequestFiltering;

/// <summary>
/// Paths that the gateway routes as one path and some servers read as another get 400 before routing, so that no route's
/// policies (authorization, limits) can be passed by asking a backend for its path in a form the gateway reads otherwise:
/// <list type="bullet">
/// <item>a dot segment with a path parameter, <c>/public/..;/admin</c> (<see cref="DotSegmentParameters"/>: Tomcat and
/// Jetty read it as <c>/admin</c>);</item>
/// <item>a backslash, sent as it is or escaped (<c>%5C</c>, which Kestrel decodes). Windows' HTTP server (HTTP.sys,
/// under IIS and ASP.NET Core's HttpSys server) reads it as <c>/</c> and then resolves dot segments:
/// <c>/public/..%5Cadmin/secret</c>, routed under <c>/public/</c>, went on to the backend as
/// <c>/public/..%5Cadmin/secret</c> (tried), which such a backend serves as <c>/admin/secret</c> (Microsoft's KB 896287
/// describes HTTP.sys's reading); and <c>/admin%5Csecret</c>, which a route <c>/admin/{**rest}</c> does not match and a
/// catch-all does, as <c>/admin/secret</c>. Browsers turn <c>\</c> into <c>/</c> before they send a path, and nginx
/// passes both forms on (tried). With <see cref="RequestFilteringOptions.BackslashesInPaths"/> (for an API whose paths
/// hold one, <c>/users/CORP%5Cjdoe</c>, in front of backends that do not read it as <c>/</c>) a backslash passes, but not
/// one that sets off a dot segment (<c>..\</c>, <c>\.\</c>), which no client has a reason to send.</item>
/// <item>with <see cref="RequestFilteringOptions.EncodedSlashesInPaths"/> false, an encoded slash (<c>%2F</c>): routing
/// reads it as part of a segment, so <c>/admin%2Fsecret</c> does not match a route <c>/admin/{**rest}</c> and a
/// catch-all beside it takes it, while a backend that decodes it (nginx does, tried) serves <c>/admin/secret</c>. By
/// default it passes, as through nginx (tried): APIs put <c>/</c> in identifiers (<c>/projects/group%2Fproject</c>).</item>
/// <item>with <see cref="RequestFilteringOptions.SemicolonsInPaths"/> false, any <c>;</c> (or <c>%3B</c>, which Kestrel
/// decodes): Tomcat and Jetty strip a segment's path parameters, so <c>/admin;x=1/secret</c>, which a route
/// <c>/admin/{**rest}</c> does not match and a catch-all does, is <c>/admin/secret</c> to them. By default it passes, as
/// through nginx: old Java applications keep their session in the path (<c>;jsessionid=</c>).</item>
/// </list>
/// Synchronous; one search for <c>;</c> or <c>\</c> (and <c>%</c>, when encoded slashes are refused) in the decoded path
/// per request, and a look at the path as sent only for one with an escape Kestrel left (it leaves <c>%2F</c>).
/// </summary>
internal static class AmbiguousPaths
{
    private static readonly SearchValues<char> Suspects = SearchValues.Create(";\\");
    private static readonly SearchValues<char> SuspectsWithEscapes = SearchValues.Create(";\\%");

    public const string EncodedSlashRefusal = "gateway: an encoded slash (%2F) in a path is refused here, since some servers read it as '/'\n";

    public const string BackslashRefusal = "gateway: a backslash in a path (as it is or as %5C) is read as '/' by some servers; the gateway refuses it\n";

    public const string SemicolonRefusal = "gateway: a ';' in a path starts a path parameter that some servers strip (/admin;x/secret is /admin/secret to them); the gateway refuses it\n";

    public const string BackslashDotSegmentRefusal = "gateway: a path segment '..' or '.' set off by a backslash is read as one by some servers; the gateway refuses it\n";

    /// <summary>The filter; a refusal is counted in <paramref name="metrics"/> (<c>gateway.requests.not_proxied</c>).</summary>
    public static Func<RequestDelegate, RequestDelegate> Middleware(RequestMetrics metrics, RequestFilteringOptions options)
    {
        var backslashesAllowed = options.BackslashesInPaths;
        var encodedSlashesAllowed = options.EncodedSlashesInPaths;
        var semicolonsAllowed = options.SemicolonsInPaths;
        var suspects = encodedSlashesAllowed ? Suspects : SuspectsWithEscapes;
        return next => context =>
        {
            var path = context.Request.Path.Value;
            if (path is null || path.AsSpan().IndexOfAny(suspects) < 0
                || Refusal(path, backslashesAllowed, encodedSlashesAllowed ? null : context.Features.Get<IHttpRequestFeature>()?.RawTarget, semicolonsAllowed) is not { } refusal)
            {
                return next(context);
            }

            return RefuseAsync(context, metrics, refusal);
        };
    }

    private static Task RefuseAsync(HttpContext context, RequestMetrics metrics, string refusal)
    {
        context.Response.StatusCode = StatusCodes.Status400BadRequest;
        metrics.NotProxied(StatusCodes.Status400BadRequest);
        return Endpoints.TextAnswer.WriteAsync(context, refusal, context.RequestAborted);
    }

    /// <summary>
    /// Why the decoded path (Kestrel's: <c>%5C</c> is <c>\</c>, <c>%2e</c> is <c>.</c>, <c>%2F</c> stays) is refused; null if
    /// it is not. <paramref name="rawTarget"/>: the request's target as sent, when encoded slashes are refused (a
    /// <c>%2F</c> in the decoded path may have been sent as <c>%252F</c>, a name with "%2F" in it); null when they pass.
    /// <paramref name="semicolonsAllowed"/> false: any <c>;</c> is refused.
    /// </summary>
    internal static string? Refusal(string path, bool backslashesAllowed, string? rawTarget = null, bool semicolonsAllowed = true)
    {
        if (rawTarget is not null && path.Contains('%') && HasEncodedSlash(rawTarget))
        {
            return EncodedSlashRefusal;
        }

        if (path.Contains('\\'))
        {
            if (!backslashesAllowed)
            {
                return BackslashRefusal;
            }

            if (HasDotSegmentWithBackslashes(path))
            {
                return BackslashDotSegmentRefusal;
            }
        }

        if (DotSegmentParameters.IsDotSegmentWithParameter(path))
        {
            return DotSegmentParameters.Refusal;
        }

        return semicolonsAllowed || !path.Contains(';') ? null : SemicolonRefusal;
    }

    /// <summary>Whether the target's path (before any <c>?</c>) has <c>%2F</c>, in either case.</summary>
    internal static bool HasEncodedSlash(string rawTarget)
    {
        var end = rawTarget.IndexOf('?', StringComparison.Ordinal);
        var path = end < 0 ? rawTarget.AsSpan() : rawTarget.AsSpan(0, end);
        return path.Contains("%2F", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// Whether the path, with each backslash read as <c>/</c>, has a dot segment (<c>.</c>, <c>..</c>, or either with a
    /// path parameter). Kestrel has resolved those between slashes, so one found here was set off by a backslash.
    /// </summary>
    internal static bool HasDotSegmentWithBackslashes(string path)
    {
        foreach (var range in path.AsSpan().SplitAny('/', '\\'))
        {
            var segment = path.AsSpan()[range];
            if (segment is "." or ".." || DotSegmentParameters.IsDotWithParameter(segment))
            {
                return true;
            }
        }

        return false;
    }
}
