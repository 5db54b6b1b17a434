using System.Net;
using Microsoft.AspNetCore.Builder;

namespace YarpGateway.ForwardedHeaders;

/// <summary>
/// Headers in which only a proxy in front can honestly speak, kept only on requests from a peer trusted under
/// <c>Gateway:ForwardedHeaders</c>; from anyone else they are removed before anything reads them (rate-limit partitions
/// by header, the backend).
/// <list type="bullet">
/// <item>The client's address, as CDNs and load balancers send it (<c>True-Client-IP</c>, <c>X-Client-IP</c>,
/// <c>CF-Connecting-IP</c>, <c>Fastly-Client-IP</c>, <c>X-Cluster-Client-IP</c>). A client's own reached the backend
/// unchanged, and libraries that read them before <c>X-Forwarded-For</c> (npm's <c>request-ip</c> reads
/// <c>X-Client-IP</c> first) took the address the client claimed.</item>
/// <item>The scheme and port the client used, in the headers other than <c>X-Forwarded-Proto</c> (which the gateway sets)
/// that frameworks read: <c>X-Forwarded-Port</c> (Spring, Rack, Symfony and Laravel, Django's
/// <c>USE_X_FORWARDED_PORT</c>), <c>X-Forwarded-Ssl</c> and <c>X-Forwarded-Scheme</c> (Rack reads
/// <c>X-Forwarded-Ssl: on</c> before <c>X-Forwarded-Proto</c>), <c>X-Forwarded-Protocol</c> (Gunicorn's
/// <c>secure_scheme_headers</c>) and <c>Front-End-Https</c>. A backend trusts them from the gateway, its proxy, and
/// so took a client's <c>X-Forwarded-Port: 1</c> into the absolute URLs it built (links, redirects, asset hosts):
/// with the output cache, a page with those was served to everyone (tried); <c>X-Forwarded-Ssl: on</c> over plain HTTP
/// made a backend that reads it as Rack does answer as if over https (tried).</item>
/// <item>The URL a proxy in front rewrote from, which some backends serve instead of the request's own:
/// <c>X-Original-URL</c> and <c>X-Rewrite-URL</c> (IIS's URL Rewrite module and ARR; Symfony before 2.7.49, 3.4.15 and
/// 4.1.4, Zend Framework and Drupal 7 read them), <c>X-Original-URI</c> and <c>X-Forwarded-Uri</c> (what nginx's
/// <c>auth_request</c> setups and Traefik's forward authentication send an authorization service). A route's policies
/// (authorization, rate limits, the WebSocket origin check) are the matched path's, so <c>GET /public</c> with
/// <c>X-Original-URL: /admin</c> passed an anonymous route to a backend that then served <c>/admin</c>
/// (CVE-2018-14773's shape; not tried, as no backend here honours them).</item>
/// </list>
/// <para>
/// Runs just before the forwarded-headers middleware, while <see cref="ConnectionInfo.RemoteIpAddress"/> is still the
/// TCP peer (after it, it is the client that peer names). A route's own <c>RequestHeader</c> transform on one of these
/// names still sets it for its backend. A request that carries none costs fourteen look-ups in Kestrel's header table.
/// </para>
/// </summary>
internal static class ProxyClaims
{
    internal static readonly string[] ClientAddressHeaderNames = ["True-Client-IP", "X-Client-IP", "CF-Connecting-IP", "Fastly-Client-IP", "X-Cluster-Client-IP"];

    internal static readonly string[] SchemeHeaderNames = ["X-Forwarded-Port", "X-Forwarded-Ssl", "X-Forwarded-Scheme", "X-Forwarded-Protocol", "Front-End-Https"];

    internal static readonly string[] OriginalUrlHeaderNames = ["X-Original-URL", "X-Rewrite-URL", "X-Original-URI", "X-Forwarded-Uri"];

    internal static readonly string[] HeaderNames = [.. ClientAddressHeaderNames, .. SchemeHeaderNames, .. OriginalUrlHeaderNames];

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
