using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;
using YarpGateway.Configuration;

namespace YarpGateway.ForwardedHeaders;

/// <summary>
/// A backend's <c>Location</c> that points at the backend's own address (the destination's scheme, host and port, as the
/// gateway reached it, or the <c>Host</c> it was sent, a destination's <c>Host</c>) becomes a path-absolute reference, <c>/login</c>, which the client resolves against the address it
/// used: nginx does the same by default (<c>proxy_redirect default</c>). YARP sends the destination's host as
/// <c>Host</c>, so backends that build absolute redirects from it (Rails' <c>redirect_to</c>, Jetty, older Tomcat and
/// Werkzeug) sent clients to <c>http://10.0.0.5:8080/login</c>, an address only the gateway can reach (tried). A
/// reference without scheme and host stays right behind a TLS-terminating load balancer and under every name the
/// gateway is reached by. Any other <c>Location</c> (relative already, or another host) passes unchanged.
/// <list type="bullet">
/// <item>The path is the client's, as nginx maps a <c>location</c>'s prefix to its <c>proxy_pass</c> URI: where the
/// request's path and the backend's share a tail of whole segments, what precedes it on each side is the route's
/// prefix (a <c>PathRemovePrefix</c>'s, a <c>PathPattern</c>'s literal part, the destination's own path), so
/// <c>/api/account</c> sent on as <c>/account</c> turns a redirect to <c>http://backend/login</c> into
/// <c>/api/login</c>, not <c>/login</c>, which was outside the route (tried). One the backend wrote under the client's
/// prefix already (it read <c>X-Forwarded-Prefix</c>, <see cref="ForwardedPrefixTransformProvider"/>) is left so.</item>
/// <item>Never a reference that starts <c>//</c> or <c>/\</c>, which a browser reads as another host: a backend's
/// redirect to itself built from a request's own path (<c>GET //evil.example/x</c>, answered with
/// <c>http://backend//evil.example/x/</c>, as trailing-slash redirects are) came out as <c>//evil.example/x/</c>, an
/// open redirect (tried). The leading slashes are one, tabs among them dropped (a browser reads <c>/\t/</c> as <c>//</c>).</item>
/// </list>
/// Behind a client's https, an https address on a plain-http destination's host (at its port, or 443) is the backend's own
/// too: told <c>X-Forwarded-Proto: https</c>, Tomcat's <c>RemoteIpValve</c>, Spring and Rails build their redirects so
/// (<c>https://10.0.0.5/login</c>), which nginx's <c>proxy_redirect default</c> passes on unreachable.
/// The URL of a <c>Refresh</c> header (<c>Refresh: 0; url=http://10.0.0.5:8080/login</c>, a redirect older PHP and CGI
/// applications and download pages send, which browsers follow) is mapped the same way, as nginx's
/// <c>proxy_redirect</c> maps it; the delay and the rest of the header are kept.
/// Two header reads per response; a parse only for a response with an absolute URL in one of them.
/// </summary>
internal sealed class LocationTransformProvider : RouteTransformProvider
{
    internal const string RefreshHeaderName = "Refresh";

    public override void Apply(TransformBuilderContext context) => context.AddResponseTransform(static transform =>
    {
        var headers = transform.HttpContext.Response.Headers;
        if (headers.Location is { Count: 1 } location
            && location.ToString() is var value && value.StartsWith("http", StringComparison.OrdinalIgnoreCase) // absolute: the rest only for these
            && OnTheDestination(transform, value) is { } reference)
        {
            headers.Location = reference;
        }

        if (headers.TryGetValue(RefreshHeaderName, out var refresh) && refresh.Count == 1
            && refresh.ToString() is var text && RefreshUrl(text) is var (start, length)
            && OnTheDestination(transform, text.Substring(start, length)) is { } url)
        {
            headers[RefreshHeaderName] = string.Concat(text.AsSpan(0, start), url, text.AsSpan(start + length));
        }

        return ValueTask.CompletedTask;
    });

    private static string? OnTheDestination(ResponseTransformContext transform, string url)
        => transform.ProxyResponse?.RequestMessage is { RequestUri: { } destination } request
            ? OnTheDestination(url, destination, ClientPath(transform.HttpContext), request.Headers.Host, transform.HttpContext.Request.IsHttps)
            : null;

    /// <summary>
    /// Where the absolute URL of a <c>Refresh</c> header's value is (<c>5; url=http://b/x</c>, <c>0;URL='http://b/x'</c>,
    /// <c>3, http://b/x</c>, as HTML's parser of the header reads them: a delay, <c>;</c> or <c>,</c>, an optional
    /// <c>url=</c>, an optional quote); null when it names none, or one that is not absolute.
    /// </summary>
    internal static (int Start, int Length)? RefreshUrl(string value)
    {
        var i = 0;
        while (i < value.Length && value[i] == ' ')
        {
            i++;
        }

        var digits = i;
        while (i < value.Length && (char.IsAsciiDigit(value[i]) || value[i] == '.'))
        {
            i++;
        }

        if (i == digits)
        {
            return null;
        }

        i = SkipSpaces(value, i);
        if (i == value.Length || value[i] is not (';' or ','))
        {
            return null;
        }

        i = SkipSpaces(value, i + 1);
        if (value.AsSpan(i).StartsWith("url", StringComparison.OrdinalIgnoreCase) && SkipSpaces(value, i + 3) is var equals && equals < value.Length && value[equals] == '=')
        {
            i = SkipSpaces(value, equals + 1);
        }

        var end = value.Length;
        if (i < value.Length && value[i] is '\'' or '"')
        {
            var quote = value[i++];
            var closing = value.IndexOf(quote, i);
            end = closing < 0 ? value.Length : closing;
        }

        while (end > i && value[end - 1] == ' ')
        {
            end--;
        }

        return value.AsSpan(i, end - i).StartsWith("http", StringComparison.OrdinalIgnoreCase) ? (i, end - i) : null;
    }

    private static int SkipSpaces(string value, int i)
    {
        while (i < value.Length && value[i] is ' ' or '\t')
        {
            i++;
        }

        return i;
    }

    /// <summary>
    /// The path-absolute reference <paramref name="location"/> stands for when it is an absolute URI on
    /// <paramref name="destination"/>'s scheme, host and port, or on the <c>Host</c> the backend was sent
    /// (<paramref name="sentHost"/>: a destination's <c>Host</c>, which a backend builds its redirects from as it does from
    /// the address's); null otherwise. With <paramref name="clientPath"/> (the request's path as the client sent it), the
    /// path is mapped from the backend's side of the route to the client's.
    /// </summary>
    internal static string? OnTheDestination(string location, Uri destination, string? clientPath = null, string? sentHost = null, bool clientUsedHttps = false)
    {
        if (!location.StartsWith("http", StringComparison.OrdinalIgnoreCase)
            || !Uri.TryCreate(location, UriKind.Absolute, out var uri)
            || !(string.Equals(uri.Scheme, destination.Scheme, StringComparison.OrdinalIgnoreCase)
                    ? IsAt(uri, destination.IdnHost, destination.Port) || (sentHost is not null && IsAt(uri, sentHost, destination))
                    : clientUsedHttps && IsHttpsOnThePlainDestination(uri, destination, sentHost)))
        {
            return null;
        }

        // What follows the authority, as the backend wrote it (its escapes unchanged).
        var authorityEnd = location.IndexOf("//", StringComparison.Ordinal) + 2;
        var rest = location.AsSpan(authorityEnd).IndexOfAny('/', '?', '#');
        var reference = rest < 0 ? "/" : location[authorityEnd + rest] == '/' ? location[(authorityEnd + rest)..] : string.Concat("/", location.AsSpan(authorityEnd + rest));

        if (clientPath is not null && Prefixes(BackendPath(destination), clientPath) is var (from, to)
            && StartsWithSegment(reference, from)
            && !(from.Length == 0 && StartsWithSegment(reference, to))) // written under the client's prefix already (X-Forwarded-Prefix read)
        {
            reference = to + reference[from.Length..];
            if (reference.Length == 0 || reference[0] != '/')
            {
                reference = "/" + reference;
            }
        }

        return OneLeadingSlash(reference);
    }

    /// <summary>
    /// The route's prefix on the backend's side and on the client's, from a request's two paths: what precedes the tail
    /// of whole segments they share (<c>/account</c> and <c>/api/account</c>: <c>""</c> and <c>/api</c>). Null when they
    /// are the same, or share no segment (a <c>PathSet</c>), except for a backend path of <c>/</c>, all of the client's
    /// path removed (<c>/api</c> through <c>PathRemovePrefix /api</c>).
    /// </summary>
    internal static (string From, string To)? Prefixes(string backendPath, string clientPath)
    {
        var shared = RequestFiltering.EscapesAsSent.SharedTail(backendPath, clientPath);
        if (shared == 0)
        {
            return backendPath == "/" && clientPath.Length > 1 ? (string.Empty, clientPath.TrimEnd('/')) : null;
        }

        var (from, to) = (backendPath[..^shared], clientPath[..^shared]);
        return from == to ? null : (from, to);
    }

    internal static bool StartsWithSegment(string reference, string prefix)
        => reference.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)
            && (reference.Length == prefix.Length || prefix.Length == 0 || reference[prefix.Length] is '/' or '?' or '#');

    /// <summary>
    /// Whether <paramref name="uri"/>, an https address, is a plain-http destination's own as a backend behind TLS writes it:
    /// told <c>X-Forwarded-Proto: https</c>, it builds its redirects with https, the <c>Host</c> it was sent (the
    /// destination's) and that host's port or 443 (Tomcat's <c>RemoteIpValve</c>, Spring, Rails behind a proxy that ends
    /// TLS). Only while the client used https: to a client on plain HTTP, such a redirect is the backend's way up to TLS.
    /// </summary>
    private static bool IsHttpsOnThePlainDestination(Uri uri, Uri destination, string? sentHost)
    {
        if (!string.Equals(uri.Scheme, Uri.UriSchemeHttps, StringComparison.OrdinalIgnoreCase) || !string.Equals(destination.Scheme, Uri.UriSchemeHttp, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var host = sentHost is null ? default : new HostString(sentHost);
        var sameHost = string.Equals(uri.IdnHost, destination.IdnHost, StringComparison.OrdinalIgnoreCase)
            || (host.HasValue && string.Equals(uri.IdnHost, host.Host, StringComparison.OrdinalIgnoreCase));
        return sameHost && (uri.Port == 443 || uri.Port == destination.Port || (host.Port is { } port && uri.Port == port));
    }

    private static bool IsAt(Uri uri, string host, int port)
        => string.Equals(uri.IdnHost, host, StringComparison.OrdinalIgnoreCase) && uri.Port == port;

    /// <summary>Whether <paramref name="uri"/> is on a <c>Host</c> header's host and port (the scheme's default port when it names none).</summary>
    private static bool IsAt(Uri uri, string sentHost, Uri destination)
    {
        var host = new HostString(sentHost);
        var defaultPort = string.Equals(destination.Scheme, Uri.UriSchemeHttps, StringComparison.OrdinalIgnoreCase) ? 443 : 80;
        return host.HasValue && IsAt(uri, host.Host, host.Port ?? defaultPort);
    }

    /// <summary>
    /// <paramref name="reference"/> with a leading run of slashes and backslashes as one slash: never another host's
    /// reference. Tabs count as nothing in the run, as a browser removes them from a URL before it reads one
    /// (<c>/\t/evil.example</c> is <c>//evil.example</c> to it).
    /// </summary>
    internal static string OneLeadingSlash(string reference)
    {
        var slashes = 0;
        var run = 0;
        for (; run < reference.Length && reference[run] is '/' or '\\' or '\t'; run++)
        {
            slashes += reference[run] == '\t' ? 0 : 1;
        }

        return slashes > 1 ? string.Concat("/", reference.AsSpan(run)) : reference;
    }

    /// <summary>The path the backend was sent, as the gateway wrote it.</summary>
    internal static string BackendPath(Uri destination)
        => RequestFiltering.PathAsSentTransformProvider.PathOf(destination.OriginalString) is { IsEmpty: false } path ? path.ToString() : "/";

    /// <summary>The request's path as the client sent it (origin form, no query); null when there is none to read.</summary>
    internal static string? ClientPath(HttpContext context)
    {
        if (context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()?.RawTarget is not { } raw)
        {
            return null;
        }

        var path = RequestFiltering.PathAsSentTransformProvider.PathOf(raw);
        return path.IsEmpty || path[0] != '/' ? null : path.ToString();
    }
}
