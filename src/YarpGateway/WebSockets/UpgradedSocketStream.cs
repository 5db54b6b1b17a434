using System.Net.Sockets;

namespace YarpGateway.WebSockets;

/// <summary>
/// The backend side of a WebSocket that <see cref="UpgradeConnector"/> opened: the socket itself,
/// after whatever arrived with the 101 (<paramref name="early"/>, often empty; up to a kilobyte when the
/// backend speaks first, let go once read). A zero-byte read waits on the socket with no buffer, so an
/// idle WebSocket holds none here.
/// </summary>
internal sealed class UpgradedSocketStream(Socket socket, byte[] early) : AsyncOnlyStream
{
    private byte[]? _early = early.Length > 0 ? early : null;
    private int _earlyOffset;
    private SocketSend? _send; // from the first write on: the socket's own would keep the last buffer sent

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_early is { } bytes)
        {
            var n = Math.Min(bytes.Length - _earlyOffset, buffer.Length);
            bytes.AsSpan(_earlyOffset, n).CopyTo(buffer.Span);
            _earlyOffset += n;
            if (_earlyOffset == bytes.Length)
            {
                _early = null; // a WebSocket whose backend spoke first would keep it for life
            }

            return ValueTask.FromResult(n); // zero for a zero-byte read: data is there already
        }

        return socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
    }

    // Writes go straight to the socket, through a send operation that lets go of each buffer once sent; there is nothing to flush.
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        => (_send ??= new SocketSend()).SendAllAsync(socket, buffer, cancellationToken);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            socket.Dispose();
            _send?.Dispose();
        }

        base.Dispose(disposing);
    }
}
