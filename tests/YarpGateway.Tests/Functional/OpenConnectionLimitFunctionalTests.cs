using System.Net;
using System.Net.Sockets;
using System.Text;
using YarpGateway.Endpoints;

namespace YarpGateway.Tests.Functional;

/// <summary>The open proxy connections' limit: new clients wait in the listen queue at it, and it keeps the process alive at its open-file limit.</summary>
[Collection(TimingSensitive.Name)]
public class OpenConnectionLimitFunctionalTests
{
    private static readonly byte[] KeepAliveGet = Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n");

    [Fact]
    public async Task AtMaxOpen_ANewConnectionIsNotAccepted_UntilAnOpenOneCloses()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")),
            "--Gateway:Admission:Connections:MaxOpen=3");
        var traffic = gateway.Services.GetRequiredService<TrafficCounters>();
        Assert.Equal(3, gateway.Services.GetRequiredService<OpenConnectionLimit>().Limit);

        var held = new List<Socket>();
        for (var i = 0; i < 3; i++)
        {
            var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);
            await socket.SendAsync(KeepAliveGet);
            Assert.StartsWith("HTTP/1.1 200", await RawSocket.ReceiveResponseHeadAsync(socket), StringComparison.Ordinal);
            held.Add(socket);
        }

        using var fourth = await RawSocket.ConnectAsync(gateway.ProxyAddress); // the kernel completes the handshake
        await fourth.SendAsync(KeepAliveGet);
        var answer = RawSocket.ReceiveResponseHeadAsync(fourth);

        // Three open: the fourth stays in the listen queue, not accepted, not answered.
        Assert.False(await Eventually.TrueAsync(() => traffic.AcceptedConnections > 3 || answer.IsCompleted, TimeSpan.FromMilliseconds(500)),
            $"accepted {traffic.AcceptedConnections} connections with a limit of 3");

        held[0].Dispose();
        Assert.StartsWith("HTTP/1.1 200", await answer.WaitAsync(TimeSpan.FromSeconds(10)), StringComparison.Ordinal);
        Assert.Equal(4, traffic.AcceptedConnections);
        foreach (var socket in held)
        {
            socket.Dispose();
        }
    }

    [Fact]
    public async Task MoreClientsThanTheOpenFileLimitAllows_TheProcessLivesOn_AndServesWhenTheyLeave()
    {
        // Before: with the open-file limit at 600, 800 idle clients made every accept fail (EMFILE), Kestrel
        // retried in a busy loop, and the runtime ended the process ("Out of memory.") when it next
        // started a thread. Every connection on it was dropped.
        await using var backend = await TestBackend.StartAsync("a");
        var configPath = ProxyConfigJson.WriteTemp("yarpgateway-files-", ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")));
        using var gateway = GatewayProcess.StartOnLoopbackWithOpenFileLimit(600, configPath);
        var (proxy, management) = await gateway.FindEndpointsAsync();
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };

        var flood = new List<Socket>();
        try
        {
            for (var i = 0; i < 800; i++)
            {
                flood.Add(await RawSocket.ConnectAsync(proxy));
            }

            using (var live = await client.GetAsync(new Uri(management, "/healthz/live")))
            {
                Assert.Equal(HttpStatusCode.OK, live.StatusCode);
            }
        }
        finally
        {
            foreach (var socket in flood)
            {
                socket.Dispose();
            }
        }

        using var served = await client.GetAsync(new Uri(proxy, "/after"));
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Contains("Open proxy connections are limited to 44 (from the open-file limit of 600)", gateway.StandardOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("Out of memory", gateway.StandardError + gateway.StandardOutput, StringComparison.Ordinal);
        File.Delete(configPath);
    }
}
