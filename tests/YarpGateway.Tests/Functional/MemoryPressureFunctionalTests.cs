using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using YarpGateway.Endpoints;
using YarpGateway.Memory;

namespace YarpGateway.Tests.Functional;

/// <summary>
/// Near the GC heap's limit new clients are held back, so that the gateway does not run out of memory with every
/// connection on it. Tried before: with the heap capped at 64 MiB (as .NET caps it in a container), HTTP/2 clients
/// opening idle WebSockets ended the process at 4,198 ("Internal CLR error"); with this, capped at 256 MiB, it held
/// 17,500 and refused the rest, with no allocation failing.
/// </summary>
public class MemoryPressureFunctionalTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private static byte[] Get(string path) => Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");

    // One whole response (head, and the body its Content-Length gives), so that the next one on the connection starts clean.
    private static async Task<string> ExchangeAsync(System.Net.Sockets.Socket socket, byte[] request)
    {
        await socket.SendAsync(request);
        using var timeout = new CancellationTokenSource(Bound);
        var text = new StringBuilder();
        var buffer = new byte[4096];
        while (true)
        {
            var all = text.ToString();
            var end = all.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end >= 0)
            {
                var length = System.Text.RegularExpressions.Regex.Match(all[..end], @"(?im)^Content-Length:\s*(\d+)") is { Success: true } m ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
                if (all.Length >= end + 4 + length)
                {
                    return all;
                }
            }

            var read = await socket.ReceiveAsync(buffer, System.Net.Sockets.SocketFlags.None, timeout.Token);
            if (read == 0)
            {
                return all;
            }

            text.Append(Encoding.Latin1.GetString(buffer, 0, read));
        }
    }

    [Fact]
    public async Task NearTheLimit_NewConnectionsWait_WebSocketsGet503_OpenConnectionsAreServed_AndLivenessStaysUp()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        var pressure = gateway.Services.GetRequiredService<MemoryPressure>();
        using var open = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        Assert.StartsWith("HTTP/1.1 200", await ExchangeAsync(open, Get("/bytes/2")), StringComparison.Ordinal);

        // Any heap is over a threshold this low.
        config["Gateway"] = new JsonObject { ["Memory"] = new JsonObject { ["RefuseNewAbove"] = 0.000001 } };
        gateway.WriteConfig(config);
        Assert.True(await Eventually.TrueAsync(() => pressure.IsHigh, Bound), "memory never read as high");
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("[MemoryHigh] The GC heap is", StringComparison.Ordinal));

        Assert.StartsWith("HTTP/1.1 200", await ExchangeAsync(open, Get("/bytes/2")), StringComparison.Ordinal);
        var refused = await ExchangeAsync(open, Encoding.ASCII.GetBytes("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"));
        Assert.StartsWith("HTTP/1.1 503", refused, StringComparison.Ordinal);
        Assert.Contains("Retry-After:", refused, StringComparison.Ordinal);
        Assert.Equal(1, pressure.RefusedUpgrades);

        // New connections are not accepted: they wait in the kernel's listen queue (but one: the listener may have been
        // waiting in accept since before memory went high), and liveness knows the gateway is holding clients back,
        // not wedged.
        using var late1 = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        await late1.SendAsync(Get("/late"));
        using var late2 = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        await late2.SendAsync(Get("/late"));
        var queue = gateway.Services.GetRequiredService<ProxyListenQueue>();
        Assert.True(await Eventually.TrueAsync(() => queue.Read().Waiting >= 1, Bound), $"listen queue {queue.Read().Waiting}");
        using var management = gateway.CreateManagementClient();
        using (var live = await management.GetAsync("/healthz/live"))
        {
            Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        }

        // Back to the default threshold: the heap is far under it, and the waiting client is served.
        config.Remove("Gateway");
        gateway.WriteConfig(config);
        Assert.StartsWith("HTTP/1.1 200", await RawSocket.ReceiveResponseHeadAsync(late1).WaitAsync(Bound), StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200", await RawSocket.ReceiveResponseHeadAsync(late2).WaitAsync(Bound), StringComparison.Ordinal);
        Assert.False(pressure.IsHigh);
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("[MemoryEased] The GC heap is down to", StringComparison.Ordinal));
    }
}
