using Yarp.ReverseProxy.Forwarder;

namespace YarpGateway.Resilience;

/// <summary>
/// A proxy error the gateway sets itself, as YARP's own (internal) feature would carry it: a refused body told apart
/// from the client's failure (<see cref="RetryAttempt"/>), a relayed WebSocket's copy that failed
/// (<see cref="WebSockets.WebSocketRelay"/>). What reads the request's outcome (the proxy error log, passive health)
/// sees it as YARP's.
/// </summary>
internal sealed class ProxyErrorFeature(ForwarderError error, Exception? exception) : IForwarderErrorFeature
{
    public ForwarderError Error { get; } = error;

    public Exception? Exception { get; } = exception;
}
