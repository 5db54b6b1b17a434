using Yarp.ReverseProxy.Model;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;
using YarpGateway.Configuration;

namespace YarpGateway.ForwardedHeaders;

/// <summary>
/// A backend's cookie is scoped to the client's side of the route, as <see cref="LocationTransformProvider"/> maps its
/// redirects: the two together are what a sign-in behind a route that maps paths needs.
/// <list type="bullet">
/// <item><c>Path</c> is mapped from the backend's side of the route to the client's (nginx does it when told,
/// <c>proxy_cookie_path /app/ /</c>). A Tomcat application under its context path, a destination
/// <c>http://tomcat:8080/app/</c> served at <c>/</c>, sets <c>JSESSIONID</c> with <c>Path=/app</c> and redirects to
/// <c>/app/home</c>; the redirect reached the client as <c>/home</c>, where the browser does not send a cookie scoped
/// to <c>/app</c>, so every sign-in started over (tried). A <c>Path=/</c> is left as it is: a cookie a backend sets for
/// the whole site is meant for it (a sign-in service's, behind <c>PathRemovePrefix /auth</c>), and narrowing it to the
/// route would take it from the rest.</item>
/// <item><c>Domain</c> is removed when it names the backend's own host (the destination's, or the <c>Host</c> it was
/// sent) and not a domain the client's own host is in: a browser refuses such a cookie, and without the attribute it is
/// kept for the host the client used. A backend that writes its cookies' domain from the <c>Host</c> YARP sends it (the
/// destination's) set cookies no browser kept.</item>
/// </list>
/// The cluster's session-affinity cookie is the gateway's own, set for the client's side already, and left as it is.
/// One header read per response; a parse only for a response that sets a cookie.
/// </summary>
internal sealed class SetCookieTransformProvider : RouteTransformProvider
{
    public override void Apply(TransformBuilderContext context) => context.AddResponseTransform(static transform =>
    {
        var headers = transform.HttpContext.Response.Headers;
        if (headers.SetCookie is { Count: > 0 } cookies
            && transform.ProxyResponse?.RequestMessage is { RequestUri: { } destination } request)
        {
            var affinityKey = transform.HttpContext.Features.Get<IReverseProxyFeature>()?.Cluster?.Config.SessionAffinity is { Enabled: true } affinity ? affinity.AffinityKeyName : null;
            var scope = new BackendScope(destination, LocationTransformProvider.ClientPath(transform.HttpContext), request.Headers.Host, transform.HttpContext.Request.Host.Host);
            string?[]? mapped = null;
            for (var i = 0; i < cookies.Count; i++)
            {
                if (cookies[i] is { } cookie && !IsNamed(cookie, affinityKey) && OnTheClientSide(cookie, scope) is { } rewritten)
                {
                    mapped ??= cookies.ToArray();
                    mapped[i] = rewritten;
                }
            }

            if (mapped is not null)
            {
                headers.SetCookie = mapped;
            }
        }

        return ValueTask.CompletedTask;
    });

    /// <summary>Where a response's request went and came from: what a cookie's attributes are mapped with.</summary>
    /// <param name="Destination">The backend's address, as the gateway reached it (its path is the route's path on that side).</param>
    /// <param name="ClientPath">The request's path as the client sent it; null when there is none to read.</param>
    /// <param name="SentHost">The <c>Host</c> the backend was sent when it was not the destination's (a destination's <c>Host</c>).</param>
    /// <param name="ClientHost">The host the client sent the request to.</param>
    internal readonly record struct BackendScope(Uri Destination, string? ClientPath, string? SentHost, string ClientHost);

    /// <summary>
    /// <paramref name="setCookie"/> with its <c>Path</c> mapped to the client's side of the route and a <c>Domain</c> naming
    /// the backend's own host removed; null when neither applies (the value passes as the backend wrote it).
    /// </summary>
    internal static string? OnTheClientSide(string setCookie, BackendScope scope)
    {
        var attributes = setCookie.IndexOf(';');
        if (attributes < 0)
        {
            return null; // no attributes: nothing scoped to the backend
        }

        System.Text.StringBuilder? result = null;
        var copied = 0; // what of setCookie is in result already
        for (var start = attributes; start < setCookie.Length;)
        {
            var end = setCookie.IndexOf(';', start + 1);
            end = end < 0 ? setCookie.Length : end;
            var attribute = setCookie.AsSpan(start + 1, end - start - 1);
            var equals = attribute.IndexOf('=');
            var name = (equals < 0 ? attribute : attribute[..equals]).Trim();
            var value = equals < 0 ? [] : attribute[(equals + 1)..].Trim();

            string? replacement = null;
            var remove = false;
            if (name.Equals("Path", StringComparison.OrdinalIgnoreCase))
            {
                replacement = ClientPathOf(value.ToString(), scope);
            }
            else if (name.Equals("Domain", StringComparison.OrdinalIgnoreCase))
            {
                remove = IsTheBackendsOwn(value, scope);
            }

            if (replacement is not null || remove)
            {
                result ??= new System.Text.StringBuilder(setCookie.Length);
                result.Append(setCookie, copied, start - copied);
                if (replacement is not null)
                {
                    var raw = attribute[(equals + 1)..];
                    var valueStart = start + 1 + equals + 1 + (raw.Length - raw.TrimStart().Length);
                    result.Append(setCookie, start, valueStart - start).Append(replacement);
                    copied = valueStart + value.Length;
                }
                else
                {
                    copied = end; // the attribute and the ';' before it
                }
            }

            start = end;
        }

        return result?.Append(setCookie, copied, setCookie.Length - copied).ToString();
    }

    /// <summary>
    /// A cookie path on the backend's side of the route as the client's: under the backend's prefix (<c>/app</c> of
    /// <c>http://tomcat:8080/app/</c>, <c>/v2</c> of a <c>PathPattern</c>) it is put under the client's; with no
    /// backend prefix (a <c>PathRemovePrefix</c>) a path other than <c>/</c> and not under the client's prefix already is
    /// put under it. Null when it stays (<c>/</c>, another path, a route that maps nothing).
    /// </summary>
    internal static string? ClientPathOf(string path, BackendScope scope)
    {
        if (path.Length == 0 || path[0] != '/' || path == "/" || scope.ClientPath is null
            || LocationTransformProvider.Prefixes(LocationTransformProvider.BackendPath(scope.Destination), scope.ClientPath) is not var (from, to)
            || !LocationTransformProvider.StartsWithSegment(path, from)
            || (from.Length == 0 && LocationTransformProvider.StartsWithSegment(path, to)))
        {
            return null;
        }

        var mapped = to + path[from.Length..];
        return mapped.Length == 0 ? "/" : mapped[0] == '/' ? mapped : "/" + mapped;
    }

    /// <summary>
    /// Whether a cookie's <c>Domain</c> names the backend's own host (the destination's, or the <c>Host</c> it was sent)
    /// and the client's host is not in it, so that a browser would refuse the cookie (RFC 6265, 5.3 step 6).
    /// </summary>
    internal static bool IsTheBackendsOwn(ReadOnlySpan<char> domain, BackendScope scope)
    {
        domain = domain.TrimStart('.');
        if (domain.IsEmpty || DomainMatches(scope.ClientHost, domain))
        {
            return false;
        }

        return domain.Equals(scope.Destination.IdnHost, StringComparison.OrdinalIgnoreCase)
            || domain.Equals(scope.Destination.Host, StringComparison.OrdinalIgnoreCase)
            || (scope.SentHost is { } sent && domain.Equals(new HostString(sent).Host, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>RFC 6265's domain-match: the host is the domain, or a name (not an address) under it.</summary>
    private static bool DomainMatches(string host, ReadOnlySpan<char> domain)
        => host.AsSpan().Equals(domain, StringComparison.OrdinalIgnoreCase)
            || (host.Length > domain.Length
                && host.AsSpan().EndsWith(domain, StringComparison.OrdinalIgnoreCase)
                && host[host.Length - domain.Length - 1] == '.'
                && !System.Net.IPAddress.TryParse(host, out _));

    private static bool IsNamed(string setCookie, string? name)
    {
        if (name is null)
        {
            return false;
        }

        var equals = setCookie.IndexOf('=');
        return equals > 0 && setCookie.AsSpan(0, equals).Trim().Equals(name, StringComparison.Ordinal);
    }
}
