using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;
using YarpGateway.Configuration;

namespace YarpGateway.ForwardedHeaders;

/// <summary>
/// <c>X-Real-IP</c> carries the client address the gateway determined (the TCP peer, or what a trusted peer's
/// <c>X-Forwarded-For</c> says), as Traefik sets it and as nginx set-ups set it by hand. Before, the client's own
/// <c>X-Real-IP</c> went to the backend unchanged, and frameworks that read it before <c>X-Forwarded-For</c> (Go's
/// chi and Echo, for one) took the address a client claimed (tried: <c>X-Real-IP: 6.6.6.6</c> reached the backend).
/// <list type="bullet">
/// <item>Routes that send <c>X-Forwarded-For</c> (YARP's default, or an <c>X-Forwarded</c> transform whose
/// <c>For</c> is <c>Set</c> or <c>Append</c>): set to the client address, replacing the client's.</item>
/// <item>Routes that do not (<c>X-Forwarded</c> with <c>Off</c> or <c>Remove</c>, or only an RFC 7239
/// <c>Forwarded</c> transform): the client's is removed and none is added; such a route chose what its backend
/// learns of the client, and in which header.</item>
/// </list>
/// Runs before the route's own transforms, so a route's <c>RequestHeader</c> or <c>RequestHeaderRemove</c> on
/// <c>X-Real-IP</c> has the last word. The address string is the one the connection already made for
/// <c>X-Forwarded-For</c>.
/// </summary>
internal sealed class RealIpTransformProvider : RouteTransformProvider
{
    internal const string HeaderName = "X-Real-IP";

    private static readonly RequestTransform Set = new RequestFuncTransform(static transform =>
    {
        var headers = transform.ProxyRequest.Headers;
        headers.Remove(HeaderName);
        if (transform.HttpContext.Connection.RemoteIpAddress is { } address)
        {
            headers.TryAddWithoutValidation(HeaderName, address.ToString());
        }

        return ValueTask.CompletedTask;
    });

    private static readonly RequestTransform Remove = new RequestFuncTransform(static transform =>
    {
        transform.ProxyRequest.Headers.Remove(HeaderName);
        return ValueTask.CompletedTask;
    });

    /// <summary>Before the route's own transforms.</summary>
    public override void Apply(TransformBuilderContext context)
        => context.RequestTransforms.Insert(0, SendsForwardedFor(context) ? Set : Remove);

    /// <summary>
    /// Whether the route's backend gets <c>X-Forwarded-For</c>: YARP adds its defaults (after every provider) unless the
    /// route configures forwarding itself, and then an <c>X-Forwarded</c> transform's <c>For</c> action (or its
    /// action for all four headers) says.
    /// </summary>
    internal static bool SendsForwardedFor(TransformBuilderContext context)
    {
        if (context.UseDefaultForwarders is not false)
        {
            return true;
        }

        foreach (var transform in context.Route?.Transforms ?? [])
        {
            if (ValueOf(transform, "X-Forwarded") is { } all)
            {
                var action = ValueOf(transform, "For") ?? all;
                return action.Equals("Set", StringComparison.OrdinalIgnoreCase) || action.Equals("Append", StringComparison.OrdinalIgnoreCase);
            }
        }

        return false;
    }
}
