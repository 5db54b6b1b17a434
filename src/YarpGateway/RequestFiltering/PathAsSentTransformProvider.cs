using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;
using YarpGateway.Configuration;

namespace YarpGateway.RequestFiltering;

/// <summary>
/// Forwards a path's percent-escapes as the client sent them, as nginx (<c>proxy_pass</c> without a URI) and Envoy do.
/// YARP builds the backend's address from the decoded path and escapes it again in its own way, so:
/// <list type="bullet">
/// <item>escapes of reserved characters came out decoded: <c>/files/a%3Bv2.pdf</c> reached the backend as
/// <c>/files/a;v2.pdf</c>, which Tomcat and Jetty read as <c>/files/a</c> with a path parameter (RFC 3986: a reserved
/// character and its escape are not the same URI); <c>%2B</c> came out as <c>+</c>, <c>%3D</c> as <c>=</c>;</item>
/// <item>escapes Kestrel leaves undecoded got their <c>%</c> escaped: an encoded slash (<c>%2F</c> is not a segment
/// separator) arrived as <c>%252F</c> (YARP issue 1419), and bytes that are not UTF-8 (a Latin-1 <c>/caf%E9</c>, a cut
/// sequence <c>%E2%82</c>) as <c>%25E9</c>, another resource (tried).</item>
/// </list>
/// When no transform of the route changed the path and the raw path has no dot segment (which Kestrel resolves before
/// routing) and no backslash or <c>#</c> (which <see cref="Uri"/> would read otherwise), the raw path is the backend's path;
/// when a transform changed it (<c>PathRemovePrefix</c>, <c>PathPrefix</c>, <c>PathPattern</c>; not <c>PathSet</c>, whose
/// path is the operator's), the tail it keeps of the client's path is written as the client wrote it
/// (<see cref="EscapesAsSent"/>). Otherwise, when the raw path has no <c>%25</c>, every <c>%</c> left in the decoded path came from an escape Kestrel
/// did not decode, and the address YARP builds has <c>%25</c> turned back into <c>%</c> in its path; with <c>%25</c> too,
/// the two cannot be told apart and YARP's escaping is kept. Malformed escapes (<c>%zz</c>, a trailing <c>%</c>) go on as
/// the literal characters Kestrel read (<c>%25zz</c>): <see cref="Uri"/> escapes them again. The query is passed as sent
/// in every case. Applied to every route, after the route's own transforms; one feature read and a scan of the raw path
/// per request, and a new address only for a path with an escape. A path without one takes its address from a
/// <see cref="DestinationAddressCache"/> (on routes whose query no transform changes).
/// </summary>
internal sealed class PathAsSentTransformProvider : RouteTransformProvider
{
    private readonly DestinationAddressCache _addresses = new();

    /// <summary>
    /// The route's transforms are in place when providers run: a route whose query no transform changes has the client's
    /// query as the backend's, read without the query context YARP would otherwise create for it.
    /// </summary>
    public override void Apply(TransformBuilderContext context)
    {
        var addresses = context.RequestTransforms.Any(t => t is QueryParameterTransform or QueryParameterRemoveTransform) ? null : _addresses;
        var sentEscapes = LastValueOf(context.Route, "PathSet") is null; // a PathSet's path is the operator's, not the client's
        context.AddRequestTransform(transform =>
        {
            Restore(transform, addresses, sentEscapes);
            return ValueTask.CompletedTask;
        });
    }

    /// <param name="transform">The request's transform context, after the route's own transforms.</param>
    /// <param name="addresses">
    /// Where a path without escapes takes its address from, when the route's query is the client's: YARP would build the
    /// same one anew for every request (<see cref="DestinationAddressCache"/>).
    /// </param>
    /// <param name="sentEscapes">
    /// Whether a path the route's transforms changed keeps the client's escapes in the part of it that is the client's
    /// (<see cref="EscapesAsSent"/>).
    /// </param>
    internal static void Restore(RequestTransformContext transform, DestinationAddressCache? addresses = null, bool sentEscapes = true)
    {
        var raw = transform.HttpContext.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (raw is null || !transform.Path.HasValue)
        {
            return;
        }

        var rawPath = PathOf(raw);
        if (!rawPath.Contains('%'))
        {
            // Without escapes YARP writes the path as sent.
            if (addresses is not null && transform.ProxyRequest.RequestUri is null)
            {
                transform.ProxyRequest.RequestUri = addresses.Get(transform.DestinationPrefix, transform.Path, transform.HttpContext.Request.QueryString);
            }

            return;
        }

        var query = transform.Query.QueryString;
        var prefix = transform.DestinationPrefix;
        var sent = transform.HttpContext.Request.Path.Value;
        if (sent is not null && IsForwardableAsSent(rawPath))
        {
            var path = string.Equals(transform.Path.Value, sent, StringComparison.Ordinal) ? rawPath
                : sentEscapes ? EscapesAsSent.Restore(transform.Path.Value, sent, rawPath) : null;
            if (!path.IsEmpty)
            {
                var join = prefix.EndsWith('/') ? prefix.AsSpan(0, prefix.Length - 1) : prefix.AsSpan();
                transform.ProxyRequest.RequestUri = new Uri(string.Concat(join, path, query.Value), UriKind.Absolute);
                return;
            }
        }

        if (rawPath.Contains("%25", StringComparison.Ordinal) || !transform.Path.Value.Contains('%'))
        {
            return; // %25 too: the escapes Kestrel left cannot be told from decoded percent signs
        }

        var address = RequestUtilities.MakeDestinationAddress(prefix, transform.Path, query).OriginalString;
        transform.ProxyRequest.RequestUri = new Uri(Unescape(address, prefix.Length - 1, address.Length - (query.Value?.Length ?? 0)), UriKind.Absolute);
    }

    /// <summary>The path of a request target or an absolute address, as written: origin form, without its query.</summary>
    internal static ReadOnlySpan<char> PathOf(string target)
    {
        var end = target.IndexOf('?', StringComparison.Ordinal);
        return OriginForm(end < 0 ? target.AsSpan() : target.AsSpan(0, end));
    }

    /// <summary>
    /// The path of a request target in absolute form (<c>GET http://api.example/a%3Bb HTTP/1.1</c>, RFC 9112 3.2.2),
    /// which Kestrel gives as its raw target whole: its escapes went to the backend decoded (<c>/a;b</c>, tried) while
    /// the same path in origin form kept them. Empty when it has no path; an origin-form target as it is.
    /// </summary>
    internal static ReadOnlySpan<char> OriginForm(ReadOnlySpan<char> target)
    {
        if (target.IsEmpty || target[0] == '/' || target.IndexOf("://", StringComparison.Ordinal) is not (> 0 and var scheme))
        {
            return target;
        }

        var authority = target[(scheme + 3)..];
        return authority.IndexOf('/') is >= 0 and var slash ? authority[slash..] : [];
    }

    /// <summary>
    /// Whether the raw path (origin form) can be the backend's as it is: Kestrel changed nothing in it but the escapes
    /// (no dot segment, plain or escaped), and <see cref="Uri"/> will keep it (no backslash, which it turns into a slash,
    /// and no <c>#</c>, where it would end the path; Kestrel takes both as part of the path).
    /// </summary>
    internal static bool IsForwardableAsSent(ReadOnlySpan<char> rawPath)
    {
        if (rawPath.IsEmpty || rawPath[0] != '/' || rawPath.ContainsAny('\\', '#'))
        {
            return false;
        }

        foreach (var range in rawPath[1..].Split('/'))
        {
            var segment = rawPath[1..][range];
            if (segment is "." or ".."
                || segment.Equals("%2e", StringComparison.OrdinalIgnoreCase)
                || segment.Equals("%2e%2e", StringComparison.OrdinalIgnoreCase)
                || segment.Equals(".%2e", StringComparison.OrdinalIgnoreCase)
                || segment.Equals("%2e.", StringComparison.OrdinalIgnoreCase))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary><paramref name="address"/> with every <c>%25</c> between <paramref name="start"/> and <paramref name="end"/> turned back into <c>%</c>.</summary>
    internal static string Unescape(string address, int start, int end)
    {
        start = Math.Max(start, 0);
        var path = address.AsSpan(start, end - start);
        if (!path.Contains("%25", StringComparison.Ordinal))
        {
            return address;
        }

        return string.Concat(address.AsSpan(0, start), path.ToString().Replace("%25", "%", StringComparison.Ordinal), address.AsSpan(end));
    }
}
