using System.Net;
using System.Net.Sockets;
using System.Text;

namespace YarpGateway.Tests.Functional;

/// <summary>A backend on a loopback socket that reads each request head and then runs a script.</summary>
internal sealed class RawTcpBackend : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _handlers = [];
    private int _connections;

    /// <summary>Every request head received, in order; one character per byte (Latin-1), so any byte can be checked.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> Heads { get; } = new();

    public Uri Address => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");

    public int Connections => Volatile.Read(ref _connections);

    public static Task<RawTcpBackend> StartAsync(Func<Socket, CancellationToken, Task> script)
        => StartAsync((socket, _, cancel) => script(socket, cancel));

    /// <summary>As <see cref="StartAsync(Func{Socket, CancellationToken, Task})"/>, the script also given the connection's request head as read (with any body bytes that came with it).</summary>
    public static Task<RawTcpBackend> StartAsync(Func<Socket, string, CancellationToken, Task> script)
    {
        var backend = new RawTcpBackend();
        backend._listener.Start();
        backend._handlers.Add(backend.AcceptLoopAsync(script));
        return Task.FromResult(backend);
    }

    private async Task AcceptLoopAsync(Func<Socket, string, CancellationToken, Task> script)
    {
        try
        {
            while (true)
            {
                var socket = await _listener.AcceptSocketAsync(_stop.Token);
                Interlocked.Increment(ref _connections);
                lock (_handlers)
                {
                    _handlers.Add(HandleAsync(socket, script));
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task HandleAsync(Socket socket, Func<Socket, string, CancellationToken, Task> script)
    {
        using (socket)
        {
            try
            {
                var head = new List<byte>();
                var buffer = new byte[1024];
                while (!Encoding.ASCII.GetString(head.ToArray()).Contains("\r\n\r\n", StringComparison.Ordinal))
                {
                    var read = await socket.ReceiveAsync(buffer, _stop.Token);
                    if (read == 0)
                    {
                        return;
                    }

                    head.AddRange(buffer.AsSpan(0, read));
                }

                var text = Encoding.Latin1.GetString(head.ToArray());
                Heads.Enqueue(text);
                await script(socket, text, _stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        Task[] handlers;
        lock (_handlers)
        {
            handlers = [.. _handlers];
        }

        await Task.WhenAll(handlers).WaitAsync(TimeSpan.FromSeconds(10));
        _stop.Dispose();
    }
}
