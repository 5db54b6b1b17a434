using System.Net;
using System.Net.Sockets;
using System.Text;

namespace YarpGateway.Tests.WebSockets;

/// <summary>
/// A WebSocket client over a raw socket (HTTP/1.1 upgrade): it sees every frame, control frames
/// included, and reads only when the test says so. Its receive buffer is small so that a client that
/// stops reading is felt by the gateway after a few KiB rather than megabytes.
/// </summary>
internal sealed class RawWebSocketClient : IAsyncDisposable
{
    private readonly Socket _socket;

    private RawWebSocketClient(Socket socket, Stream stream, int status, string headers)
    {
        _socket = socket;
        Stream = stream;
        Status = status;
        ResponseHeaders = headers;
    }

    public Stream Stream { get; }

    public int Status { get; }

    public string ResponseHeaders { get; }

    public static async Task<RawWebSocketClient> ConnectAsync(Uri gateway, string path, string? key = null, string version = "13", int receiveBuffer = 4096, string extraHeaders = "")
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = receiveBuffer, NoDelay = true };
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, gateway.Port), timeout.Token);
        var stream = new NetworkStream(socket, ownsSocket: false);
        key ??= Convert.ToBase64String(Guid.NewGuid().ToByteArray());
        var request = $"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{gateway.Port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {version}\r\n{extraHeaders}\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request), timeout.Token);

        // Read the response head byte by byte so that no frame byte is consumed with it.
        var head = new StringBuilder();
        var one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await stream.ReadAsync(one, timeout.Token) == 0)
            {
                break;
            }

            head.Append((char)one[0]);
        }

        var text = head.ToString();
        var status = int.Parse(text.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        return new RawWebSocketClient(socket, stream, status, text);
    }

    public Task<ReceivedFrame?> ReadFrameAsync(CancellationToken cancellationToken) => WebSocketFrames.ReadAsync(Stream, cancellationToken);

    public async Task SendAsync(byte[] frame, CancellationToken cancellationToken) => await Stream.WriteAsync(frame, cancellationToken);

    /// <summary>Reads the body that follows a non-101 response head (Content-Length or until close).</summary>
    public async Task<string> ReadBodyAsync(CancellationToken cancellationToken)
    {
        var length = ResponseHeaders.Split("\r\n").Select(l => l.Split(':', 2)).Where(p => p.Length == 2 && p[0].Trim().Equals("Content-Length", StringComparison.OrdinalIgnoreCase)).Select(p => int.Parse(p[1].Trim(), System.Globalization.CultureInfo.InvariantCulture)).FirstOrDefault(-1);
        using var body = new MemoryStream();
        var buffer = new byte[4096];
        while (length < 0 || body.Length < length)
        {
            var read = await Stream.ReadAsync(buffer, cancellationToken);
            if (read == 0)
            {
                break;
            }

            body.Write(buffer, 0, read);
        }

        return Encoding.UTF8.GetString(body.ToArray());
    }

    /// <summary>Ends the connection with a reset (RST) instead of an orderly close.</summary>
    public void Reset()
    {
        _socket.LingerState = new LingerOption(true, 0);
        _socket.Close();
    }

    public ValueTask DisposeAsync()
    {
        Stream.Dispose();
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
