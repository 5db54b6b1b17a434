using System.Net;
using System.Net.Sockets;

namespace YarpGateway.Tests.Functional;

/// <summary>
/// A loopback listener that never accepts, its backlog filled by a few pending connects: new SYNs to
/// it are dropped, so connecting to <see cref="Port"/> times out instead of being refused.
/// </summary>
internal sealed class BacklogFullListener : IDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly List<Socket> _fillers = [];

    public BacklogFullListener()
    {
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(1);
        Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        for (var i = 0; i < 4; i++)
        {
            var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
            try
            {
                filler.Connect(IPAddress.Loopback, Port);
            }
            catch (SocketException)
            {
                // in progress or dropped: either way the backlog fills
            }

            _fillers.Add(filler);
        }
    }

    public int Port { get; }

    public void Dispose()
    {
        _fillers.ForEach(f => f.Dispose());
        _listener.Dispose();
    }
}
