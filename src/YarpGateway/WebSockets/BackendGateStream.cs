namespace YarpGateway.WebSockets;

/// <summary>
/// The backend side of an upgraded WebSocket as YARP sees it: reads wait for room in the relay's
/// buffer and take at most that room (<see cref="WebSocketRelay.BackendReadLimitAsync"/>), so YARP's
/// copy never parks its 64 KiB read buffer in a write that waits for a slow client. YARP issues a
/// zero-byte read before it rents that buffer; the wait for room happens there, so a connection held
/// back by its client holds no read buffer at all. Writes (client to backend) pass straight through.
/// </summary>
internal sealed class BackendGateStream(Stream inner, WebSocketRelay relay) : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => inner.CanWrite;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var limit = await relay.BackendReadLimitAsync(cancellationToken);
        return await inner.ReadAsync(buffer.Length > limit ? buffer[..limit] : buffer, cancellationToken);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        => inner.WriteAsync(buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => inner.WriteAsync(buffer, offset, count, cancellationToken);

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override void Flush() => inner.Flush();

    // YARP only uses the asynchronous methods; blocking a thread on a WebSocket is never wanted.
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("Use ReadAsync.");

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("Use WriteAsync.");

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
