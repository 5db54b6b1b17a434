namespace YarpGateway.ProxyProtocol;

/// <summary>
/// <c>Gateway:ProxyProtocol</c>: the Proxy endpoint behind a TCP (layer 4) load balancer that sends the PROXY
/// protocol (AWS NLB, Azure's Private Link Service, Google Cloud's TCP proxy, HAProxy, nginx's stream module),
/// so that the gateway knows the client's address, not the load balancer's. Read at start-up. Off by default.
/// </summary>
internal sealed class ProxyProtocolOptions
{
    public const string SectionName = "Gateway:ProxyProtocol";

    /// <summary>
    /// Every connection to the Proxy endpoint must start with a PROXY protocol header, version 1 or 2 (nginx's
    /// <c>listen ... proxy_protocol</c>, HAProxy's <c>accept-proxy</c>); one that does not is closed. Default false.
    /// </summary>
    public bool Enabled { get; set; }

    /// <summary>
    /// The networks, in CIDR notation, whose connections may carry the header (the load balancer's). A connection from
    /// anywhere else is closed. Default: none listed, which lets any peer say who the client is: list the load
    /// balancer's networks wherever anything else can reach the Proxy port.
    /// </summary>
    public List<string> TrustedNetworks { get; set; } = [];

    /// <summary>
    /// Whether a connection without a header is closed (the default, true). False serves it with its peer's address,
    /// for the minutes in which a load balancer is switched over to sending the header (as Envoy's
    /// <c>allow_requests_without_proxy_protocol</c>): turn it on at the gateway with this false, then at the load
    /// balancer, then set this back to true. A malformed header is refused either way.
    /// </summary>
    public bool Required { get; set; } = true;
}
