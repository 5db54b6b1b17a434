using System.Net.Sockets;

namespace YarpGateway.Tests.Functional;

/// <summary>Plain TCP to the gateway, for bytes no HTTP client would send.</summary>
internal static class RawSocket
{
    public static async Task<Socket> ConnectAsync(Uri address)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
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

    /// <summary>Reads everything until the peer closes; bounded at 10 s.</summary>
    public static Task<byte[]> ReceiveUntilClosedAsync(Socket socket) => ReceiveAtLeastAsync(socket, int.MaxValue);
}
