using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using YarpGateway.Telemetry;

namespace YarpGateway.WebSockets;

/// <summary>
/// WebSocket instruments: bytes and messages relayed (downstream is backend to client, upstream
/// client to backend), buffered bytes, open WebSockets (observed from <see cref="WebSocketCounters"/>,
/// so the relay's hot path never touches a meter), drops and evictions. A route's evictions by reason and its drops
/// are at 0 from its first WebSocket (<see cref="RouteOpened"/>), so that the first of each is a rise that a rate or an
/// alert sees.
/// </summary>
internal sealed class WebSocketMetrics
{
    private static readonly EvictionReason[] Reasons = Enum.GetValues<EvictionReason>();

    private readonly ConcurrentDictionary<string, byte> _routesOpened = new(StringComparer.Ordinal);
    private readonly ZeroSeriesBudget _routeZeros = new();
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
        _evictions = meter.CreateCounter<long>("gateway.websocket.evictions", unit: "{connection}", description: "WebSockets the gateway closed itself, by route and reason (drop_limit, buffer_full, write_timeout, drain, protocol_error, close_timeout, backend_lost, idle).");
    }

    /// <summary>
    /// A WebSocket opened on <paramref name="route"/>: the first on it publishes its evictions by reason and its drops at 0
    /// (within <see cref="ZeroSeriesBudget"/>; a route past it gets each series at its first event). Later ones cost a
    /// dictionary read.
    /// </summary>
    public void RouteOpened(string route)
    {
        if (_routesOpened.ContainsKey(route) || !_routesOpened.TryAdd(route, 0) || !_routeZeros.TryReserve(route, Reasons.Length + 2))
        {
            return;
        }

        foreach (var reason in Reasons)
        {
            _evictions.Add(0, new TagList { { "route", route }, { "reason", reason.ToTag() } });
        }

        var tag = new KeyValuePair<string, object?>("route", route);
        _droppedMessages.Add(0, tag);
        _droppedBytes.Add(0, tag);
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
