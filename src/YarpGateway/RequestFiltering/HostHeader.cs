using Microsoft.Net.Http.Headers;

namespace YarpGateway.RequestFiltering;

/// <summary>
/// The Host header as routing and the backend see it; one synchronous check of the Host value per request, and
/// a new string only for a name that ends with a dot.
/// <list type="bullet">
/// <item>A host name with a trailing dot (<c>admin.example.</c>, an absolute DNS name) is the same host as without
/// it, but route matching compares names as written: such a request passed over a route's <c>Hosts</c> and reached
/// a catch-all route instead, leaving behind whatever the host's route added (its authorization policy, its
/// limits; tried on the Release build). The dot is dropped before routing, as nginx does, so the backend's
/// <c>X-Forwarded-Host</c> has the name without it.</item>
/// <item>An empty <c>Host:</c> (which HTTP/1.1 allows for a target with no authority) is removed: YARP copied it
/// to the backend request beside the Host that request gets (the destination's), and the backend received two
/// Host headers, which Kestrel and Go's <c>net/http</c> answer with 400 (tried on the Release build). The
/// backend now gets the destination's, and no <c>X-Forwarded-Host</c>.</item>
/// </list>
/// </summary>
internal static class HostHeader
{
    public static Func<RequestDelegate, RequestDelegate> Middleware { get; } = static next => context =>
    {
        if (context.Request.Host.Value is { } host)
        {
            if (host.Length == 0)
            {
                context.Request.Headers.Remove(HeaderNames.Host);
            }
            else if (Without(host) is { } normalized)
            {
                context.Request.Host = new HostString(normalized);
            }
        }

        return next(context);
    };

    /// <summary>The Host value (name, then an optional port) without its name's one trailing dot; null when it has none.</summary>
    internal static string? Without(string host)
    {
        var colon = host.LastIndexOf(':');
        var end = colon > host.LastIndexOf(']') ? colon : host.Length; // an IPv6 literal's colons are inside brackets
        return end >= 2 && host[end - 1] == '.' && host[end - 2] != '.' ? host.Remove(end - 1, 1) : null;
    }
}
