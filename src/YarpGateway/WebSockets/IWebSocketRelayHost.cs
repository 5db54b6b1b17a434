namespace YarpGateway.WebSockets;

/// <summary>What a <see cref="WebSocketRelay"/> reports to: registration for the drain, drops and evictions for metrics and logs, the copy's end for passive health.</summary>
internal interface IWebSocketRelayHost
{
    void Register(WebSocketRelay relay);

    void Unregister(WebSocketRelay relay);

    void Dropped(WebSocketRelay relay, int messages, long bytes);

    void Evicted(WebSocketRelay relay, EvictionReason reason, ushort code, string detail);

    /// <summary>
    /// The header naming a request's id (<c>Gateway:Telemetry:RequestIdHeader</c>): the one request header a WebSocket keeps
    /// after its handshake, for its access line, written when it ends, and its eviction line.
    /// </summary>
    string RequestIdHeader { get; }

    /// <summary>A relayed WebSocket's copy has ended, its outcome (<c>IForwarderErrorFeature</c>) set: the request's proxy outcome, for passive health.</summary>
    void CopyEnded(HttpContext context);
}
