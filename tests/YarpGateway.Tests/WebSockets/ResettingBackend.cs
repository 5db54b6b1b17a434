using System.Net;
using System.Net.Sockets;

namespace YarpGateway.Tests.WebSockets;

/// <summary>
/// A destination that takes connections and resets each as soon as it has read a request head (or an HTTP/2 preface, which
/// ends the same way), without answering: a backend that crashed or was killed in the middle of a handshake, as a client of
/// it sees it. Or, given an answer, writes that (an HTTP/1.1 response) before the reset. Counts the heads it read.
/// </summary>
internal sealed class ResettingBackend : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly byte[]? _answer;
    private int _heads;

    private ResettingBackend(string? answer)
    {
        _answer = answer is null ? null : System.Text.Encoding.ASCII.GetBytes(answer);
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public Uri Address => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");

    /// <summary>Request heads read and answered with a reset.</summary>
    public int Heads => Volatile.Read(ref _heads);

    public static ResettingBackend Start(string? answer = null) => new(answer);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _accepting.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var socket = await _listener.AcceptSocketAsync(_stop.Token);
            _ = ResetAfterHeadAsync(socket);
        }
    }

    private async Task ResetAfterHeadAsync(Socket socket)
    {
        using (socket)
        {
            using var bound = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            bound.CancelAfter(TimeSpan.FromSeconds(10));
            var buffer = new byte[8192];
            var length = 0;
            try
            {
                while (length < buffer.Length && buffer.AsSpan(0, length).IndexOf("\r\n\r\n"u8) < 0)
                {
                    var read = await socket.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, bound.Token);
                    if (read == 0)
                    {
                        return;
                    }

                    length += read;
                }

                Interlocked.Increment(ref _heads);
                if (_answer is not null)
                {
                    await socket.SendAsync(_answer, SocketFlags.None, bound.Token);
                    socket.Shutdown(SocketShutdown.Send);
                    return;
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException)
            {
                return;
            }

            socket.LingerState = new LingerOption(true, 0); // close with a reset, not a FIN
        }
    }
}
