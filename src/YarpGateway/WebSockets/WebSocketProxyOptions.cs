namespace YarpGateway.WebSockets;

/// <summary>
/// Options under <c>Gateway:WebSockets</c>: the outbound buffer every proxied WebSocket gets towards
/// its client, what happens when a client reads slower than its backend writes, and the 1001 close
/// during a drain. Each per-connection setting can be overridden per route in <c>Metadata</c>
/// (<see cref="WebSocketSettings"/>).
/// </summary>
internal sealed class WebSocketProxyOptions
{
    public const string SectionName = "Gateway:WebSockets";

    /// <summary>Bytes the gateway buffers towards one client, at most. Default 64 KiB; from 1 KiB to 64 MiB.</summary>
    public int OutboundBufferBytes { get; set; } = 64 * 1024;

    /// <summary>What happens when the buffer is full. Default <see cref="SlowClientPolicy.Backpressure"/>.</summary>
    public SlowClientPolicy SlowClientPolicy { get; set; } = SlowClientPolicy.Backpressure;

    /// <summary>A write of up to 16 KiB to the client that does not complete in this time aborts the connection (every policy). Default 30 s.</summary>
    public TimeSpan WriteTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary><see cref="SlowClientPolicy.Disconnect"/>: a buffer that stays full this long closes the client with 1013. Default 10 s.</summary>
    public TimeSpan DisconnectAfter { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary><see cref="SlowClientPolicy.DropMessages"/>: after this many dropped messages the client is closed with 1008; 0 = no limit. Default 1000.</summary>
    public long MaxDroppedMessages { get; set; } = 1000;

    /// <summary><see cref="SlowClientPolicy.DropMessages"/>: after this many dropped bytes the client is closed with 1008; 0 = no limit. Default 16 MiB.</summary>
    public long MaxDroppedBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>During a drain, the 1001 closes are spread over this window so clients do not all reconnect at once. Default 10 s.</summary>
    public TimeSpan CloseWindow { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>After the gateway sends a close frame, how long it waits for the client's close and the backend's end before aborting both. Default 5 s.</summary>
    public TimeSpan CloseTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Open HTTP/1.1 WebSocket upgrades to plain-http backends with the gateway's own connector
    /// (<see cref="UpgradeConnector"/>) instead of <c>SocketsHttpHandler</c>, which keeps 8 KiB of
    /// buffers per WebSocket for its life (32.2 to 22.4 KiB of RSS per idle WebSocket). Default true. Read when a cluster's client is (re)built.
    /// </summary>
    public bool LeanBackendConnector { get; set; } = true;
}

/// <summary>What a full outbound buffer does.</summary>
internal enum SlowClientPolicy
{
    /// <summary>Stop reading from the backend until the client catches up.</summary>
    Backpressure,

    /// <summary>Drop whole data messages (never control frames) while the client is over its buffer; close with 1008 after a limit.</summary>
    DropMessages,

    /// <summary>Close with 1013 ("try again later") once the buffer has stayed full for <see cref="WebSocketProxyOptions.DisconnectAfter"/>.</summary>
    Disconnect,
}
