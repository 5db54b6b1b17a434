namespace YarpGateway.WebSockets;

/// <summary>What a <see cref="WebSocketRelay"/> reports to: registration for the drain, drops and evictions for metrics and logs.</summary>
internal interface IWebSocketRelayHost
{
    void Register(WebSocketRelay relay);

    void Unregister(WebSocketRelay relay);

    void Dropped(WebSocketRelay relay, int messages, long bytes);

    void Evicted(WebSocketRelay relay, EvictionReason reason, ushort code, string detail);
}
