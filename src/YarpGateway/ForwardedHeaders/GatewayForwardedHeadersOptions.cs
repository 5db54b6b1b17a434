namespace YarpGateway.ForwardedHeaders;

/// <summary>
/// <c>Gateway:ForwardedHeaders</c>: the load balancers trusted to say who the client is. From a peer in
/// <see cref="KnownNetworks"/> or <see cref="KnownProxies"/>, the last address of <c>X-Forwarded-For</c>
/// becomes the client address (for <c>PartitionBy: ClientIp</c>, logs and the <c>X-Forwarded-For</c>
/// the backend gets); from anyone else the header is ignored, and the client-address headers CDNs set
/// (<c>True-Client-IP</c> and the like, <see cref="ProxyClaims"/>) are removed. Reloads: a change applies to
/// the next request (<see cref="TrustedProxies"/>); an invalid one is rejected and the last good value kept.
/// Default: nobody trusted, and no forwarded-headers middleware runs (ASP.NET Core's own default trusts
/// loopback; the gateway does not).
/// </summary>
internal sealed class GatewayForwardedHeadersOptions
{
    public const string SectionName = "Gateway:ForwardedHeaders";

    /// <summary>Trusted networks, in CIDR notation (<c>10.0.0.0/8</c>, <c>fd00::/8</c>). Default: none.</summary>
    public List<string> KnownNetworks { get; set; } = [];

    /// <summary>Trusted single addresses. Default: none.</summary>
    public List<string> KnownProxies { get; set; } = [];

    /// <summary>How many trusted hops of <c>X-Forwarded-For</c> are read, from the right. Default 1.</summary>
    public int ForwardLimit { get; set; } = 1;

    public bool Enabled => KnownNetworks.Count > 0 || KnownProxies.Count > 0;
}
