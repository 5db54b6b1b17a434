namespace YarpGateway.WebSockets;

/// <summary>
/// Running totals of every proxied WebSocket, updated with interlocked adds on the relay path and
/// read by the metrics' observable instruments (so the hot path never touches a meter).
/// "Downstream" is backend to client, "upstream" client to backend.
/// </summary>
internal sealed class WebSocketCounters
{
    private long _bufferedBytes;
    private long _downstreamBytes;
    private long _upstreamBytes;
    private long _downstreamMessages;
    private long _upstreamMessages;
    private long _open;

    /// <summary>Bytes waiting in outbound buffers, across connections.</summary>
    public long BufferedBytes => Interlocked.Read(ref _bufferedBytes);

    public long DownstreamBytes => Interlocked.Read(ref _downstreamBytes);

    public long UpstreamBytes => Interlocked.Read(ref _upstreamBytes);

    public long DownstreamMessages => Interlocked.Read(ref _downstreamMessages);

    public long UpstreamMessages => Interlocked.Read(ref _upstreamMessages);

    /// <summary>WebSockets upgraded and being relayed.</summary>
    public long Open => Interlocked.Read(ref _open);

    public void AddBuffered(long bytes) => Interlocked.Add(ref _bufferedBytes, bytes);

    public void AddDownstream(long bytes) => Interlocked.Add(ref _downstreamBytes, bytes);

    public void AddUpstream(long bytes) => Interlocked.Add(ref _upstreamBytes, bytes);

    public void AddDownstreamMessages(long count) => Interlocked.Add(ref _downstreamMessages, count);

    public void AddUpstreamMessages(long count) => Interlocked.Add(ref _upstreamMessages, count);

    public void Opened() => Interlocked.Increment(ref _open);

    public void Closed() => Interlocked.Decrement(ref _open);
}
