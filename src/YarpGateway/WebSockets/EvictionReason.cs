namespace YarpGateway.WebSockets;

/// <summary>Why the gateway closed a proxied WebSocket itself (the <c>reason</c> tag of <c>gateway.websocket.evictions</c>).</summary>
internal enum EvictionReason
{
    /// <summary>DropMessages: the client's dropped messages or bytes reached the limit (close 1008).</summary>
    DropLimit,

    /// <summary>Disconnect: the buffer stayed full for DisconnectAfter (close 1013).</summary>
    BufferFull,

    /// <summary>A write to the client made no progress for WriteTimeout (aborted).</summary>
    WriteTimeout,

    /// <summary>The gateway is shutting down (close 1001).</summary>
    Drain,

    /// <summary>The backend sent a malformed frame (close 1002).</summary>
    ProtocolError,

    /// <summary>The client did not answer the gateway's close frame, or the backend did not end, within CloseTimeout (aborted).</summary>
    CloseTimeout,

    /// <summary>The backend's connection ended without a close frame in either direction (close 1014).</summary>
    BackendLost,

    /// <summary>No bytes either way for the cluster's <c>HttpRequest.ActivityTimeout</c> (close 1001).</summary>
    Idle,
}

internal static class EvictionReasonExtensions
{
    public static string ToTag(this EvictionReason reason) => reason switch
    {
        EvictionReason.DropLimit => "drop_limit",
        EvictionReason.BufferFull => "buffer_full",
        EvictionReason.WriteTimeout => "write_timeout",
        EvictionReason.Drain => "drain",
        EvictionReason.ProtocolError => "protocol_error",
        EvictionReason.CloseTimeout => "close_timeout",
        EvictionReason.BackendLost => "backend_lost",
        EvictionReason.Idle => "idle",
        _ => "other",
    };
}
