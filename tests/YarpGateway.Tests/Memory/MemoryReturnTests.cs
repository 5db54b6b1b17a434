using System.Net.Sockets;
using System.Text;
using YarpGateway.Endpoints;
using YarpGateway.Memory;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Memory;

/// <summary>Many clients leave: the gateway compacts its heap once and says so, or says why not.</summary>
public class MemoryReturnTests
{
    internal const int Clients = 40;

    [Fact]
    public async Task ManyClientsLeaving_CompactsOnce_AndLogsWhatCameBack()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")),
            "--Gateway:Memory:MinConnectionDrop=20", "--Gateway:Memory:SettleTime=00:00:00.300", "--Gateway:Memory:MaxHeapBytes=1099511627776");

        await ComeAndGoAsync(gateway);

        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("[MemoryReturned]", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)),
            "no MemoryReturned line: " + gateway.DescribeCounters("gateway.memory"));
        var line = Assert.Single(gateway.Logs.Lines, l => l.Contains("[MemoryReturned]", StringComparison.Ordinal));
        Assert.Contains($"Open connections fell from {Clients} to 0: compacted the heap and gave memory back. GC heap committed ", line, StringComparison.Ordinal);
        Assert.Matches(@"RSS \d+\.\d -> \d+\.\d MiB; requests paused \d+\.\d ms\.", line);
        Assert.Equal(1, gateway.Counter("gateway.memory.compactions|result=compacted"));
        Assert.Equal(0, gateway.Counter("gateway.memory.compactions|result=heap_too_large"));

        // The status page says the same.
        using var management = gateway.CreateManagementClient();
        using var status = System.Text.Json.JsonDocument.Parse(await management.GetStringAsync("/status.json"));
        var memory = status.RootElement.GetProperty("memory");
        Assert.Equal(1, memory.GetProperty("compactions").GetInt64());
        Assert.Equal(gateway.Counter("gateway.memory.returned"), memory.GetProperty("returnedBytes").GetInt64());
    }

    [Fact]
    public async Task AHeapOverMaxHeapBytes_IsNotCompacted_AndTheLogSaysWhy()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")),
            "--Gateway:Memory:MinConnectionDrop=20", "--Gateway:Memory:SettleTime=00:00:00.300", "--Gateway:Memory:MaxHeapBytes=1048576");

        await ComeAndGoAsync(gateway);

        // Counted, then logged: wait for the line itself.
        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("[MemoryReturnSkipped]", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)),
            "not skipped: " + gateway.DescribeCounters("gateway.memory"));
        Assert.Equal(1, gateway.Counter("gateway.memory.compactions|result=heap_too_large"));
        var line = Assert.Single(gateway.Logs.Lines, l => l.Contains("[MemoryReturnSkipped]", StringComparison.Ordinal));
        Assert.Contains($"Open connections fell from {Clients} to 0, but the live heap (", line, StringComparison.Ordinal);
        Assert.Contains("MiB) is over Gateway:Memory:MaxHeapBytes (1.0 MiB): not compacting", line, StringComparison.Ordinal);
        Assert.Equal(0, gateway.Counter("gateway.memory.compactions|result=compacted"));
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("[MemoryReturned]", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TurnedOff_ADropDoesNothing()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")),
            "--Gateway:Memory:ReturnAfterDrop=false", "--Gateway:Memory:MinConnectionDrop=20", "--Gateway:Memory:SettleTime=00:00:00", "--Gateway:Memory:MaxHeapBytes=1099511627776");
        var memory = gateway.Services.GetRequiredService<MemoryReturn>();
        var traffic = gateway.Services.GetRequiredService<TrafficCounters>();

        var sockets = await OpenAsync(gateway);
        memory.Sample();
        CloseAll(sockets);
        Assert.True(await Eventually.TrueAsync(() => traffic.OpenConnections == 0, TimeSpan.FromSeconds(10)), $"{traffic.OpenConnections} still open");

        // With SettleTime 0, one sample after the drop decides: were the option ignored, this one
        // would start measuring the heap (or, with the timer's help, have compacted already).
        memory.Sample();
        Assert.False(memory.IsMeasuring);
        Assert.Equal(0, gateway.CounterSum("gateway.memory.compactions"));
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("[MemoryReturn", StringComparison.Ordinal));
    }

    // Clients keep a connection each with a request answered on it; the sampler sees them all; they leave.
    private static async Task ComeAndGoAsync(GatewayUnderTest gateway)
    {
        var memory = gateway.Services.GetRequiredService<MemoryReturn>();
        var sockets = await OpenAsync(gateway);
        Assert.True(await Eventually.TrueAsync(() => memory.Peak >= Clients, TimeSpan.FromSeconds(10)), $"peak seen: {memory.Peak}");
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("[MemoryReturn", StringComparison.Ordinal));
        CloseAll(sockets);
    }

    internal static async Task<List<Socket>> OpenAsync(GatewayUnderTest gateway)
    {
        var sockets = new List<Socket>();
        var request = Encoding.ASCII.GetBytes($"GET / HTTP/1.1\r\nHost: {gateway.ProxyAddress.Authority}\r\n\r\n");
        for (var i = 0; i < Clients; i++)
        {
            var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);
            sockets.Add(socket);
            await socket.SendAsync(request, SocketFlags.None);
            var response = Encoding.ASCII.GetString(await RawSocket.ReceiveAtLeastAsync(socket, 12));
            Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        }

        var traffic = gateway.Services.GetRequiredService<TrafficCounters>();
        Assert.Equal(Clients, traffic.OpenConnections);
        return sockets;
    }

    private static void CloseAll(List<Socket> sockets)
    {
        foreach (var socket in sockets)
        {
            socket.Dispose();
        }
    }
}
