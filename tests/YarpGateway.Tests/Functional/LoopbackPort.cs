using System.Net;
using System.Net.Sockets;

namespace YarpGateway.Tests.Functional;

/// <summary>Ports on 127.0.0.1 for tests that need a destination nobody listens on.</summary>
internal static class LoopbackPort
{
    /// <summary>A port the system just handed out and that was closed again: connecting to it is refused.</summary>
    public static int Unused()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
