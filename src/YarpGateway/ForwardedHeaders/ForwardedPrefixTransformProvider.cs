using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;
using YarpGateway.Configuration;

namespace YarpGateway.ForwardedHeaders;

/// <summary>
/// <c>X-Forwarded-Prefix</c> names the prefix a route's <c>PathRemovePrefix</c> took off, as Traefik's StripPrefix,
/// Spring Cloud Gateway's StripPrefix and Kong's <c>strip_path</c> send it: a backend that builds links from it (ASP.NET
/// Core's forwarded headers with <c>XForwardedPrefix</c>, Spring's <c>ForwardedHeaderFilter</c>) links to
/// <c>/api/login</c>, not <c>/login</c>, outside the route. YARP's default forwarding headers, which it adds after every
/// transform, set it from the request's <c>PathBase</c> alone, which the gateway leaves empty: they removed it, a route's
/// own <c>{ "RequestHeader": "X-Forwarded-Prefix", "Set": "/api" }</c> included, without a word (tried).
/// <para>
/// Only for a route that leaves forwarding to YARP's defaults (no <c>X-Forwarded</c> or <c>Forwarded</c> transform of its
/// own) and has a <c>PathRemovePrefix</c> or sets <c>X-Forwarded-Prefix</c> itself: YARP's defaults are added here instead
/// (<c>X-Forwarded-For</c>, <c>-Proto</c> and <c>-Host</c> set, <c>Forwarded</c> removed, as its own), and the prefix is
/// the route's value when the request's path (slashes merged) starts with it, else none; a client's own is never passed.
/// Registered after <see cref="RealIpTransformProvider"/>, which reads whether YARP's defaults are still to come.
/// </para>
/// </summary>
internal sealed class ForwardedPrefixTransformProvider : RouteTransformProvider
{
    internal const string HeaderName = "X-Forwarded-Prefix";

    public override void Apply(TransformBuilderContext context)
    {
        if (context.UseDefaultForwarders is false || context.Route is not { } route)
        {
            return; // the route chose its forwarding headers
        }

        var own = route.Transforms?.Any(t => string.Equals(ValueOf(t, "RequestHeader"), HeaderName, StringComparison.OrdinalIgnoreCase)) == true;
        var removed = LastValueOf(route, "PathRemovePrefix") is { Length: > 0 } value ? value : null;
        if (!own && removed is null)
        {
            return; // YARP's defaults, as they are
        }

        context.AddXForwardedFor();
        context.AddXForwardedProto();
        context.AddXForwardedHost();
        context.AddRequestHeaderRemove("Forwarded");
        if (!own)
        {
            var prefix = new PathString(removed!.StartsWith('/') ? removed : "/" + removed);
            context.AddRequestTransform(transform =>
            {
                Set(transform, prefix);
                return ValueTask.CompletedTask;
            });
        }

        context.UseDefaultForwarders = false;
    }

    /// <summary>The client's own removed; the route's prefix when the request's path (slashes merged) starts with it.</summary>
    internal static void Set(RequestTransformContext transform, PathString prefix)
    {
        var headers = transform.ProxyRequest.Headers;
        headers.Remove(HeaderName);
        if (RequestFiltering.RoutedWithMergedSlashes.Merged(transform.HttpContext.Request.Path).StartsWithSegments(prefix))
        {
            headers.TryAddWithoutValidation(HeaderName, transform.HttpContext.Request.PathBase.Add(prefix).ToUriComponent().TrimEnd('/') is { Length: > 0 } sent ? sent : "/");
        }
    }
}
