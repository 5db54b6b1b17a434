using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace YarpGateway.Endpoints;

/// <summary>Which of the gateway's Kestrel endpoints a connection arrived on.</summary>
internal enum GatewayEndpointKind
{
    /// <summary>Not accepted on a named gateway endpoint (treated as proxy traffic).</summary>
    Unknown,

    /// <summary><c>Kestrel:Endpoints:Proxy</c>: proxied traffic only.</summary>
    Proxy,

    /// <summary><c>Kestrel:Endpoints:Management</c>: health (and later metrics); never proxies.</summary>
    Management,

    /// <summary><c>Kestrel:Endpoints:HttpsRedirect</c>, optional: plain HTTP, every request redirected to https (<see cref="HttpsRedirect"/>); never proxies.</summary>
    HttpsRedirect,
}

/// <summary>Stores and reads the endpoint kind in the connection's items, keyed by a private object.</summary>
internal static class GatewayEndpointTag
{
    private static readonly object Key = new();

    // Boxed once: every connection stores one of these, and a box per connection lives as long as it.
    private static readonly object ProxyBox = GatewayEndpointKind.Proxy;
    private static readonly object ManagementBox = GatewayEndpointKind.Management;
    private static readonly object HttpsRedirectBox = GatewayEndpointKind.HttpsRedirect;

    public static void Set(ConnectionContext connection, GatewayEndpointKind kind)
        => connection.Items[Key] = kind switch
        {
            GatewayEndpointKind.Proxy => ProxyBox,
            GatewayEndpointKind.Management => ManagementBox,
            GatewayEndpointKind.HttpsRedirect => HttpsRedirectBox,
            _ => kind,
        };

    public static GatewayEndpointKind Of(HttpContext context)
        => context.Features.Get<IConnectionItemsFeature>()?.Items.TryGetValue(Key, out var value) == true && value is GatewayEndpointKind kind
            ? kind
            : GatewayEndpointKind.Unknown;
}
