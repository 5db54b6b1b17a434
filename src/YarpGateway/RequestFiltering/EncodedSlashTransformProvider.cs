using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace YarpGateway.RequestFiltering;

/// <summary>
/// Forwards an encoded slash (<c>%2F</c>) in the path as the client sent it. Kestrel leaves <c>%2F</c>
/// encoded in <c>Request.Path</c> (it is not a segment separator), and YARP escapes the path again
/// when it builds the backend's address, so <c>/a%2Fb</c> reached the backend as <c>/a%252Fb</c>
/// (YARP issue 1419). When the raw request target has <c>%2F</c> and no <c>%25</c> (so every
/// <c>%2F</c> in the path came from the client as such), the address is built with it restored.
/// With <c>%25</c> also present the two cannot be told apart, and YARP's escaping is kept.
/// Applied to every route, after the route's own transforms; one feature read per request.
/// </summary>
internal sealed class EncodedSlashTransformProvider : ITransformProvider
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
        if (raw is null)
        {
            return;
        }

        var pathEnd = raw.IndexOf('?', StringComparison.Ordinal);
        var path = pathEnd < 0 ? raw.AsSpan() : raw.AsSpan(0, pathEnd);
        if (!path.Contains("%2F", StringComparison.OrdinalIgnoreCase) || path.Contains("%25", StringComparison.Ordinal))
        {
            return;
        }

        var address = RequestUtilities.MakeDestinationAddress(transform.DestinationPrefix, transform.Path, transform.Query.QueryString);
        var text = address.OriginalString.Replace("%252F", "%2F", StringComparison.OrdinalIgnoreCase);
        transform.ProxyRequest.RequestUri = new Uri(text, UriKind.Absolute);
    }
}
