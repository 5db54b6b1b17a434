namespace YarpGateway.WebSockets;

/// <summary>
/// The client-side stream YARP copies to and from once a WebSocket is upgraded: reads and writes go
/// through the <see cref="WebSocketRelay"/>. Disposing it does not close the client connection; the
/// relay does that once its buffer has drained. The relay writes to the client as soon as bytes are
/// buffered, so there is nothing to flush.
/// </summary>
internal sealed class RelayStream(WebSocketRelay relay) : AsyncOnlyStream
{
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        => relay.ReadAsync(buffer, cancellationToken);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        => relay.WriteAsync(buffer, cancellationToken);
}
