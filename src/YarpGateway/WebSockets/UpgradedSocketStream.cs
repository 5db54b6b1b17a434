using System.Net.Sockets;

namespace YarpGateway.WebSockets;

/// <summary>
/// The backend side of a WebSocket that <see cref="UpgradeConnector"/> opened: the socket itself,
/// after whatever arrived with the 101 (<paramref name="early"/>, often empty). A zero-byte read waits
/// on the socket with no buffer, so an idle WebSocket holds none here.
/// </summary>
internal sealed class UpgradedSocketStream(Socket socket, byte[] early) : Stream
{
    private int _earlyOffset;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var left = early.Length - _earlyOffset;
        if (left > 0)
        {
            var n = Math.Min(left, buffer.Length);
            early.AsSpan(_earlyOffset, n).CopyTo(buffer.Span);
            _earlyOffset += n;
            return ValueTask.FromResult(n); // zero for a zero-byte read: data is there already
        }

        return socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (!buffer.IsEmpty)
        {
            var sent = await socket.SendAsync(buffer, SocketFlags.None, cancellationToken);
            buffer = buffer[sent..];
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    // Writes go straight to the socket; there is nothing to flush.
    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("Use ReadAsync.");

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("Use WriteAsync.");

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            socket.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>The content of a 101 that <see cref="UpgradeConnector"/> returns: the upgraded socket as a stream.</summary>
internal sealed class UpgradedSocketContent(UpgradedSocketStream stream) : HttpContent
{
    protected override Task<Stream> CreateContentReadStreamAsync() => Task.FromResult<Stream>(stream);

    protected override Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken) => Task.FromResult<Stream>(stream);

    protected override Task SerializeToStreamAsync(Stream target, System.Net.TransportContext? context) => stream.CopyToAsync(target);

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            stream.Dispose();
        }

        base.Dispose(disposing);
    }
}
