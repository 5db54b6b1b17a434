using System.Diagnostics;
using System.Diagnostics.Metrics;
using YarpGateway.Telemetry;

namespace YarpGateway.WebSockets;

/// <summary>
/// WebSocket instruments: bytes and messages relayed (downstream is backend to client, upstream
/// client to backend), buffered bytes, open WebSockets (observed from <see cref="WebSocketCounters"/>,
/// so the relay's hot path never touches a meter), drops and evictions.
/// </summary>
internal sealed class WebSocketMetrics
{
    private readonly Counter<long> _droppedMessages;
    private readonly Counter<long> _droppedBytes;
    private readonly Counter<long> _evictions;

    public WebSocketMetrics(IMeterFactory meterFactory, WebSocketCounters webSockets)
    {
        var meter = meterFactory.Create(GatewayMeter.Name);
        meter.CreateObservableCounter(
            "gateway.websocket.bytes",
            () => new[] { Direction(webSockets.DownstreamBytes, "downstream"), Direction(webSockets.UpstreamBytes, "upstream") },
            unit: "By", description: "Bytes relayed through proxied WebSockets, by direction (downstream: backend to client).");
        meter.CreateObservableCounter(
            "gateway.websocket.messages",
            () => new[] { Direction(webSockets.DownstreamMessages, "downstream"), Direction(webSockets.UpstreamMessages, "upstream") },
            unit: "{message}", description: "Whole data messages relayed through proxied WebSockets, by direction (dropped ones not included).");
        meter.CreateObservableGauge("gateway.websocket.buffered", () => webSockets.BufferedBytes, unit: "By", description: "Bytes waiting in the outbound buffers of all proxied WebSockets (each is capped by OutboundBufferBytes).");
        meter.CreateObservableGauge("gateway.websocket.open", () => webSockets.Open, unit: "{connection}", description: "WebSockets upgraded and being relayed.");
        _droppedMessages = meter.CreateCounter<long>("gateway.websocket.dropped.messages", unit: "{message}", description: "Data messages dropped for slow clients (DropMessages policy), by route.");
        _droppedBytes = meter.CreateCounter<long>("gateway.websocket.dropped.bytes", unit: "By", description: "Bytes of dropped data messages (DropMessages policy), by route.");
        _evictions = meter.CreateCounter<long>("gateway.websocket.evictions", unit: "{connection}", description: "WebSockets the gateway closed itself, by route and reason (drop_limit, buffer_full, write_timeout, drain, protocol_error, close_timeout).");
    }

    public void Dropped(string route, int messages, long bytes)
    {
        var tag = new KeyValuePair<string, object?>("route", route);
        if (messages > 0)
        {
            _droppedMessages.Add(messages, tag);
        }

        _droppedBytes.Add(bytes, tag);
    }

    public void Evicted(string route, EvictionReason reason)
    {
        Interlocked.Increment(ref _evictionsByReason[(int)reason]);
        _evictions.Add(1, new TagList { { "route", route }, { "reason", reason.ToTag() } });
    }

    /// <summary>Evictions since start, by reason (for the status page).</summary>
    public IEnumerable<(string Reason, long Count)> EvictionsByReason
        => Enum.GetValues<EvictionReason>().Select(r => (r.ToTag(), Interlocked.Read(ref _evictionsByReason[(int)r])));

    private readonly long[] _evictionsByReason = new long[Enum.GetValues<EvictionReason>().Length];

    private static Measurement<long> Direction(long value, string direction) => new(value, new KeyValuePair<string, object?>("direction", direction));
}
