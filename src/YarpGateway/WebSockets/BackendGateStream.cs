namespace YarpGateway.WebSockets;

/// <summary>
/// The backend side of an upgraded WebSocket as YARP sees it: reads wait for room in the relay's
/// buffer and take at most that room (<see cref="WebSocketRelay.BackendReadLimitAsync"/>), so YARP's
/// copy never parks its 64 KiB read buffer in a write that waits for a slow client. YARP issues a
/// zero-byte read before it rents that buffer; the wait for room happens there, so a connection held
/// back by its client holds no read buffer at all. Writes (client to backend) pass straight through.
/// </summary>
internal sealed class BackendGateStream(Stream inner, WebSocketRelay relay) : AsyncOnlyStream
{
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        // Usually there is room at once: then the read is the backend's own, and an idle WebSocket
        // keeps no state machine of ours waiting in it.
        var limit = relay.BackendReadLimitAsync(cancellationToken);
        return limit.IsCompletedSuccessfully
            ? inner.ReadAsync(Limit(buffer, limit.Result), cancellationToken)
            : ReadAfterRoomAsync(limit, buffer, cancellationToken);
    }

    private async ValueTask<int> ReadAfterRoomAsync(ValueTask<int> limit, Memory<byte> buffer, CancellationToken cancellationToken)
        => await inner.ReadAsync(Limit(buffer, await limit), cancellationToken);

    private static Memory<byte> Limit(Memory<byte> buffer, int limit) => buffer.Length > limit ? buffer[..limit] : buffer;

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        => inner.WriteAsync(buffer, cancellationToken);

    // The backend's stream may buffer writes (an HTTP/2 request stream does): YARP flushes them through.
    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
