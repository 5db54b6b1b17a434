namespace YarpGateway.WebSockets;

/// <summary>
/// The work an outer middleware does when a request ends, handed to the <see cref="WebSocketRelay"/> that carries the request
/// (<see cref="WebSocketRelay.TakeRequestEnd"/>) instead of being done in a frame that waits for the relay: an idle WebSocket
/// would keep that frame (136 bytes) for its life.
/// </summary>
internal interface IRelayedRequestEnd
{
    /// <summary>The request has ended: called once, by the relay, before the request's task completes.</summary>
    void RequestEnded(HttpContext context, long started);
}
