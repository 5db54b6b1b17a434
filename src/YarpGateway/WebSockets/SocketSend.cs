using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace YarpGateway.WebSockets;

/// <summary>
/// Sends on a socket with an operation that lets go of each buffer once it is sent. <c>Socket.SendAsync</c> keeps its
/// send operation for the socket's next send, and with it the last buffer it sent from, and a WebSocket's backend socket
/// may not send again for hours: the lean connector's request head stayed with every idle WebSocket (687 bytes each,
/// `bench/websockets-heap.sh`), and so did the relay's last buffer towards the backend, rented from the shared pool and
/// given back, pinned (up to 64 KiB) once the pool let go of it. One per handshake, and one per upgraded stream from its
/// first write on.
/// </summary>
internal sealed class SocketSend() : SocketAsyncEventArgs(unsafeSuppressExecutionContextFlow: true), IValueTaskSource<int>
{
    private ManualResetValueTaskSourceCore<int> _source;

    /// <summary>Sends all of <paramref name="buffer"/>. A send that waits is withdrawn by closing the socket when <paramref name="cancellationToken"/> is cancelled.</summary>
    public async ValueTask SendAllAsync(Socket socket, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        while (!buffer.IsEmpty)
        {
            var sending = SendAsync(socket, buffer);
            int sent;
            if (sending.IsCompleted)
            {
                sent = await sending;
            }
            else
            {
                await using var registration = cancellationToken.UnsafeRegister(static state => ((Socket)state!).Dispose(), socket);
                try
                {
                    sent = await sending;
                }
                catch (SocketException) when (cancellationToken.IsCancellationRequested)
                {
                    throw new OperationCanceledException(cancellationToken);
                }
            }

            buffer = buffer[sent..];
        }
    }

    private ValueTask<int> SendAsync(Socket socket, ReadOnlyMemory<byte> buffer)
    {
        _source.Reset();
        SetBuffer(MemoryMarshal.AsMemory(buffer));
        bool pending;
        try
        {
            pending = socket.SendAsync(this);
        }
        catch
        {
            SetBuffer(Memory<byte>.Empty);
            throw;
        }

        if (pending)
        {
            return new ValueTask<int>(this, _source.Version);
        }

        var (sent, error) = TakeResult();
        return error is null ? new ValueTask<int>(sent) : ValueTask.FromException<int>(error);
    }

    protected override void OnCompleted(SocketAsyncEventArgs e)
    {
        var (sent, error) = TakeResult();
        if (error is null)
        {
            _source.SetResult(sent);
        }
        else
        {
            _source.SetException(error);
        }
    }

    // The outcome, and the buffer let go. Disposed while the send was under way (the socket's stream closed under a
    // waiting write: its completion comes after the deferred dispose), it keeps nothing, and SetBuffer would throw here,
    // on the socket engine's thread, where nothing catches it and the process would end.
    private (int Sent, SocketException? Error) TakeResult()
    {
        var result = (BytesTransferred, SocketError == SocketError.Success ? null : new SocketException((int)SocketError));
        try
        {
            SetBuffer(Memory<byte>.Empty);
        }
        catch (ObjectDisposedException)
        {
        }

        return result;
    }

    int IValueTaskSource<int>.GetResult(short token) => _source.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<int>.GetStatus(short token) => _source.GetStatus(token);

    void IValueTaskSource<int>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _source.OnCompleted(continuation, state, token, flags);
}
