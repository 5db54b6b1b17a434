using System.Net;
using System.Net.Sockets;

namespace YarpGateway.Tests.Functional;

/// <summary>Ports on 127.0.0.1 for tests that need a destination nobody listens on.</summary>
internal static class LoopbackPort
{
    /// <summary>
    /// A port nobody listens on, so that connecting to it is refused: one below the kernel's ephemeral range
    /// (net.ipv4.ip_local_port_range, 32768 up by default), which it never hands to a listener on port 0, so that
    /// no other test's backend can take it meanwhile (a port the system had just handed out once was, and the
    /// test's "dead" destination answered, or hung), checked free by binding it once.
    /// </summary>
    public static int Unused()
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            var port = Random.Shared.Next(20_000, 30_000);
            try
            {
                using var probe = new TcpListener(IPAddress.Loopback, port);
                probe.Start();
                return port;
            }
            catch (SocketException)
            {
                // taken: try another
            }
        }

        throw new InvalidOperationException("no free port between 20000 and 30000 on 127.0.0.1");
    }
}
