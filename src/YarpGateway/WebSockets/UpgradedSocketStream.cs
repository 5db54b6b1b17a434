using System.Net.Sockets;

namespace YarpGateway.WebSockets;

/// <summary>
/// The backend side of a WebSocket that <see cref="UpgradeConnector"/> opened: the socket itself,
/// after whatever arrived with the 101 (<paramref name="early"/>, often empty). A zero-byte read waits
/// on the socket with no buffer, so an idle WebSocket holds none here.
/// </summary>
internal sealed class UpgradedSocketStream(Socket socket, byte[] early) : AsyncOnlyStream
{
    private int _earlyOffset;

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

    // Writes go straight to the socket; there is nothing to flush.
    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (!buffer.IsEmpty)
        {
            var sent = await socket.SendAsync(buffer, SocketFlags.None, cancellationToken);
            buffer = buffer[sent..];
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            socket.Dispose();
        }

        base.Dispose(disposing);
    }
}
