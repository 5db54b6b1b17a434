using System.Text;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Hostile;

/// <summary><c>OPTIONS *</c> is about the server: answered by the gateway, not forwarded as <c>OPTIONS /</c>.</summary>
public class AsteriskOptionsTests
{
    [Fact]
    public async Task OptionsAsterisk_IsAnsweredByTheGateway_OptionsSlashStillForwarded()
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)));
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);

        await socket.SendAsync(Encoding.ASCII.GetBytes("OPTIONS * HTTP/1.1\r\nHost: gateway\r\n\r\n"));
        var asterisk = await RawSocket.ReceiveResponseHeadAsync(socket);
        await socket.SendAsync(Encoding.ASCII.GetBytes("OPTIONS / HTTP/1.1\r\nHost: gateway\r\n\r\n"));
        var slash = await RawSocket.ReceiveResponseHeadAsync(socket);

        Assert.StartsWith("HTTP/1.1 200", asterisk, StringComparison.Ordinal);
        Assert.Contains("Content-Length: 0", asterisk, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200", slash, StringComparison.Ordinal);
        Assert.Equal(["/"], backend.RawTargets.ToArray()); // only OPTIONS / reached it
    }
}
