using System.Net.Sockets;

namespace YarpGateway.Tests.Functional;

/// <summary>Plain TCP to the gateway, for bytes no HTTP client would send.</summary>
internal static class RawSocket
{
    /// <summary>A connection to <paramref name="address"/>, from <paramref name="local"/> (any 127.x address is loopback) when given.</summary>
    public static async Task<Socket> ConnectAsync(Uri address, string? local = null)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (local is not null)
        {
            socket.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Parse(local), 0));
        }

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await socket.ConnectAsync(address.Host, address.Port, cts.Token);
        return socket;
    }

    /// <summary>Reads until at least <paramref name="count"/> bytes arrived or the peer closed; bounded at 10 s.</summary>
    public static async Task<byte[]> ReceiveAtLeastAsync(Socket socket, int count)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var buffer = new byte[64 * 1024];
        var total = 0;
        while (total < count)
        {
            var read = await socket.ReceiveAsync(buffer.AsMemory(total), SocketFlags.None, cts.Token);
            if (read == 0)
            {
                break;
            }

            total += read;
        }

        return buffer[..total];
    }

    /// <summary>Reads everything until the peer closes, gracefully or with a reset; bounded at 10 s.</summary>
    public static async Task<byte[]> ReceiveUntilClosedAsync(Socket socket)
    {
        try
        {
            return await ReceiveAtLeastAsync(socket, int.MaxValue);
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
        {
            return [];
        }
    }

    /// <summary>
    /// Sends <paramref name="writes"/>, one write each, then reads the answer's head (<see cref="ReceiveResponseHeadAsync"/>);
    /// "" when the gateway closed or reset the connection unanswered. A refused connection may be reset before a later
    /// write: that write then fails, as the read would.
    /// </summary>
    public static async Task<string> ExchangeAsync(Socket socket, params byte[][] writes)
    {
        try
        {
            foreach (var write in writes)
            {
                await socket.SendAsync(write);
            }

            return await ReceiveResponseHeadAsync(socket);
        }
        catch (SocketException)
        {
            return "";
        }
    }

    /// <summary>
    /// On a connection of its own, <c>GET <paramref name="target"/></c> sent byte for byte (a path no client library would send
    /// as it is), and the answer's head.
    /// </summary>
    public static async Task<string> GetHeadAsync(Uri address, string target)
    {
        using var socket = await ConnectAsync(address);
        await socket.SendAsync(System.Text.Encoding.ASCII.GetBytes($"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n"));
        return await ReceiveResponseHeadAsync(socket);
    }

    /// <summary>Reads until the end of an HTTP/1.1 response head (a blank line); bounded at 10 s.</summary>
    public static async Task<string> ReceiveResponseHeadAsync(Socket socket)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var text = new System.Text.StringBuilder();
        var buffer = new byte[4096];
        while (!text.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
        {
            var read = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            if (read == 0)
            {
                break;
            }

            text.Append(System.Text.Encoding.ASCII.GetString(buffer, 0, read));
        }

        return text.ToString();
    }
}
