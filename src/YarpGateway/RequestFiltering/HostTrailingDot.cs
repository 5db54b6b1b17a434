namespace YarpGateway.RequestFiltering;

/// <summary>
/// A host name with a trailing dot (<c>admin.example.</c>, an absolute DNS name) is the same host as without it,
/// but route matching compares names as written: such a request passed over a route's <c>Hosts</c> and reached
/// a catch-all route instead, leaving behind whatever the host's route added (its authorization policy, its
/// limits; tried on the Release build). The dot is dropped before routing, as nginx does, so the backend's
/// <c>X-Forwarded-Host</c> has the name without it. Synchronous; a scan of the Host value per request, and a
/// new string only for a name that ends with a dot.
/// </summary>
internal static class HostTrailingDot
{
    public static Func<RequestDelegate, RequestDelegate> Middleware { get; } = static next => context =>
    {
        if (context.Request.Host.Value is { } host && Without(host) is { } normalized)
        {
            context.Request.Host = new HostString(normalized);
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
