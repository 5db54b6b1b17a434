using System.Net;
using Microsoft.AspNetCore.Builder;

namespace YarpGateway.ForwardedHeaders;

/// <summary>
/// The headers in which CDNs and load balancers tell a backend the client's address (<c>True-Client-IP</c>,
/// <c>X-Client-IP</c>, <c>CF-Connecting-IP</c>, <c>Fastly-Client-IP</c>, <c>X-Cluster-Client-IP</c>) are kept only on
/// requests from a peer trusted under <c>Gateway:ForwardedHeaders</c>, the only place such a header can honestly come
/// from; from anyone else they are removed before anything reads them (rate-limit partitions by header, the backend).
/// Before, a client's own reached the backend unchanged, and libraries that read them before <c>X-Forwarded-For</c>
/// (npm's <c>request-ip</c> reads <c>X-Client-IP</c> first) took the address the client claimed.
/// <para>
/// Runs just before the forwarded-headers middleware, while <see cref="ConnectionInfo.RemoteIpAddress"/> is still the
/// TCP peer (after it, it is the client that peer names). A route's own <c>RequestHeader</c> transform on one of these
/// names still sets it for its backend. A request that carries none costs five look-ups in Kestrel's header table.
/// </para>
/// </summary>
internal static class ClientAddressClaims
{
    internal static readonly string[] HeaderNames = ["True-Client-IP", "X-Client-IP", "CF-Connecting-IP", "Fastly-Client-IP", "X-Cluster-Client-IP"];

    /// <summary>Removes the claims unless the request's peer is one of <paramref name="trusted"/>'s (null when no peer is trusted).</summary>
    public static void RemoveUnlessTrusted(HttpContext context, ForwardedHeadersOptions? trusted)
    {
        var headers = context.Request.Headers;
        if (Carries(headers) && !IsTrusted(trusted, context.Connection.RemoteIpAddress))
        {
            foreach (var name in HeaderNames)
            {
                headers.Remove(name);
            }
        }
    }

    private static bool Carries(IHeaderDictionary headers)
    {
        foreach (var name in HeaderNames)
        {
            if (headers.ContainsKey(name))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether <paramref name="peer"/> is one of <paramref name="trusted"/>'s proxies or networks, as the forwarded-headers middleware decides it.</summary>
    internal static bool IsTrusted(ForwardedHeadersOptions? trusted, IPAddress? peer)
    {
        if (trusted is null || peer is null)
        {
            return false;
        }

        return IsKnown(trusted, peer) || (peer.IsIPv4MappedToIPv6 && IsKnown(trusted, peer.MapToIPv4()));
    }

    private static bool IsKnown(ForwardedHeadersOptions trusted, IPAddress address)
    {
        if (trusted.KnownProxies.Contains(address))
        {
            return true;
        }

        foreach (var network in trusted.KnownIPNetworks)
        {
            if (network.Contains(address))
            {
                return true;
            }
        }

        return false;
    }
}
