using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace YarpGateway.RequestFiltering;

/// <summary>
/// Forwards the percent-escapes of a path that Kestrel leaves undecoded as the client sent them. Kestrel decodes the
/// path for routing but keeps some escapes as they are, so that <c>Request.Path</c> holds their three characters:
/// an encoded slash (<c>%2F</c> is not a segment separator), bytes that are not UTF-8 (<c>%FF</c>, a Latin-1
/// <c>caf%E9</c>, a cut sequence <c>%E2%82</c>) and malformed ones (<c>%zz</c>, a trailing <c>%</c>; those go on as
/// the literal characters Kestrel read, <c>%25zz</c>, since <see cref="Uri"/> escapes them again). YARP escapes
/// the path again when it builds the backend's address, so each such <c>%</c> became <c>%25</c>: <c>/a%2Fb</c>
/// reached the backend as <c>/a%252Fb</c> (YARP issue 1419) and <c>/caf%E9</c> as <c>/caf%25E9</c>, another
/// resource (tried). When the raw request target's path has no <c>%25</c>, every <c>%</c> in the decoded path came
/// from such an escape, so the address's path is built with <c>%25</c> turned back into <c>%</c> (the query is
/// passed as sent anyway). With <c>%25</c> also present the two cannot be told apart, and YARP's escaping is kept.
/// Applied to every route, after the route's own transforms; one feature read and a scan of the raw path per request,
/// and a new address only for a path with an undecoded escape.
/// </summary>
internal sealed class UndecodedEscapesTransformProvider : ITransformProvider
{
    public void ValidateRoute(TransformRouteValidationContext context)
    {
    }

    public void ValidateCluster(TransformClusterValidationContext context)
    {
    }

    public void Apply(TransformBuilderContext context) => context.AddRequestTransform(static transform =>
    {
        Restore(transform);
        return ValueTask.CompletedTask;
    });

    internal static void Restore(RequestTransformContext transform)
    {
        var raw = transform.HttpContext.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (raw is null || !HasOnlyUndecodableEscapes(raw) || !transform.Path.HasValue || !transform.Path.Value.Contains('%'))
        {
            return;
        }

        var query = transform.Query.QueryString;
        var address = RequestUtilities.MakeDestinationAddress(transform.DestinationPrefix, transform.Path, query).OriginalString;
        transform.ProxyRequest.RequestUri = new Uri(Unescape(address, transform.DestinationPrefix.Length - 1, address.Length - (query.Value?.Length ?? 0)), UriKind.Absolute);
    }

    /// <summary>
    /// Whether the raw target's path may hold escapes Kestrel left as they are, and no <c>%25</c>: then every <c>%</c> in
    /// the decoded path came from one of them.
    /// </summary>
    internal static bool HasOnlyUndecodableEscapes(string rawTarget)
    {
        var pathEnd = rawTarget.IndexOf('?', StringComparison.Ordinal);
        var path = pathEnd < 0 ? rawTarget.AsSpan() : rawTarget.AsSpan(0, pathEnd);
        return path.Contains('%') && !path.Contains("%25", StringComparison.Ordinal);
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
