using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

namespace YarpGateway.Endpoints;

/// <summary>
/// How many new connections the kernel holds for the Proxy endpoint's listening sockets, not yet
/// accepted by the gateway (while connection admission paces accept, that is where a storm waits),
/// and how many it may hold (the backlog as the kernel applies it, after <c>net.core.somaxconn</c>).
/// Read from each socket's <c>TCP_INFO</c> (Linux: for a listening socket <c>tcpi_unacked</c> is the
/// queue and <c>tcpi_sacked</c> its limit); elsewhere both are 0. The sockets are captured as Kestrel's
/// socket transport creates them (<see cref="SocketTransportOptions.CreateBoundListenSocket"/>).
/// </summary>
internal sealed class ProxyListenQueue(GatewayListeners listeners)
{
    private const int IpProtoTcp = 6;
    private const int TcpInfo = 11;
    private const int UnackedOffset = 24; // after eight one-byte fields and rto, ato, snd_mss, rcv_mss
    private readonly List<Socket> _sockets = [];

    /// <summary>Creates a listening socket as Kestrel does, and keeps the Proxy endpoint's.</summary>
    public Socket CreateBoundListenSocket(EndPoint endpoint)
    {
        var socket = SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint);
        if (OperatingSystem.IsLinux() && socket.ProtocolType == ProtocolType.Tcp && listeners.IsProxy(endpoint))
        {
            lock (_sockets)
            {
                _sockets.Add(socket);
            }
        }

        return socket;
    }

    /// <summary>Connections waiting in the kernel, and the most it holds, over the Proxy endpoint's listening sockets.</summary>
    public (long Waiting, long Capacity) Read()
    {
        long waiting = 0, capacity = 0;
        Span<byte> info = stackalloc byte[UnackedOffset + 8];
        lock (_sockets)
        {
            for (var i = _sockets.Count - 1; i >= 0; i--)
            {
                try
                {
                    if (_sockets[i].GetRawSocketOption(IpProtoTcp, TcpInfo, info) >= UnackedOffset + 8)
                    {
                        waiting += BinaryPrimitives.ReadUInt32LittleEndian(info[UnackedOffset..]);
                        capacity += BinaryPrimitives.ReadUInt32LittleEndian(info[(UnackedOffset + 4)..]);
                    }
                }
                catch (Exception ex) when (ex is ObjectDisposedException or SocketException)
                {
                    _sockets.RemoveAt(i); // closed: the listener was unbound
                }
            }
        }

        return (waiting, capacity);
    }
}
