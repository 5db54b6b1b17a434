using System.Net.Sockets;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Memory;

/// <summary>
/// What the heap was while the clients were here says nothing about what is live once they left:
/// the gateway measures again before it decides. Runs alone, so that no other test's allocations
/// move the process's heap meanwhile.
/// </summary>
[Collection(TimingSensitive.Name)]
public class MemoryReturnHeapTests
{
    private const long MiB = 1024 * 1024;

    // Stands for the clients' memory: live while they are connected, garbage once they left.
    private byte[][]? _ballast;

    [Fact]
    public async Task AHeapOverTheLimitWhileTheClientsWereHere_IsMeasuredAgainOnceTheyLeft_AndCompacted()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var (gateway, maxHeap) = await StartWithHeapLimitAsync(backend);
        await using var owned = gateway;

        _ballast = Enumerable.Range(0, 16).Select(_ => new byte[8 * MiB]).ToArray();
        var sockets = await MemoryReturnTests.OpenAsync(gateway);
        var memory = gateway.Services.GetRequiredService<YarpGateway.Memory.MemoryReturn>();
        Assert.True(await Eventually.TrueAsync(() => memory.Peak >= MemoryReturnTests.Clients, TimeSpan.FromSeconds(10)), $"peak seen: {memory.Peak}");

        // The last collection, as the clients leave, saw a heap well over the limit.
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: false);
        var loaded = GC.GetGCMemoryInfo();
        Assert.True(loaded.HeapSizeBytes - loaded.FragmentedBytes > maxHeap, $"live heap {loaded.HeapSizeBytes - loaded.FragmentedBytes} is not over {maxHeap}");
        _ballast = null;
        foreach (var socket in sockets)
        {
            socket.Dispose();
        }

        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("[MemoryReturn", StringComparison.Ordinal)), TimeSpan.FromSeconds(15)),
            "no MemoryReturned line: " + gateway.DescribeCounters("gateway.memory"));
        Assert.Contains(gateway.Logs.Lines, l => l.Contains($"[MemoryReturned] Open connections fell from {MemoryReturnTests.Clients} to 0", StringComparison.Ordinal));
        Assert.Equal(0, gateway.Counter("gateway.memory.compactions|result=heap_too_large"));
    }

    // Stands for Kestrel's pool of pinned 4 KiB blocks, which stays after the clients left.
    private byte[][]? _pinned;

    [Fact]
    public async Task PinnedMemoryThatStays_DoesNotCountAgainstTheLimit_TheCompactionDoesNotMoveIt()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var (gateway, _) = await StartWithHeapLimitAsync(backend);
        await using var owned = gateway;

        _pinned = Enumerable.Range(0, 16).Select(_ => GC.AllocateArray<byte>((int)(8 * MiB), pinned: true)).ToArray();
        try
        {
            await PinnedStaysAsync(gateway);
        }
        finally
        {
            _pinned = null; // the other test measures the process's heap
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        }
    }

    private async Task PinnedStaysAsync(GatewayUnderTest gateway)
    {
        var sockets = await MemoryReturnTests.OpenAsync(gateway);
        var memory = gateway.Services.GetRequiredService<YarpGateway.Memory.MemoryReturn>();
        Assert.True(await Eventually.TrueAsync(() => memory.Peak >= MemoryReturnTests.Clients, TimeSpan.FromSeconds(10)), $"peak seen: {memory.Peak}");
        foreach (var socket in sockets)
        {
            socket.Dispose();
        }

        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("[MemoryReturn", StringComparison.Ordinal)), TimeSpan.FromSeconds(15)),
            "no MemoryReturned line: " + gateway.DescribeCounters("gateway.memory"));
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("[MemoryReturned]", StringComparison.Ordinal));
        Assert.Equal(0, gateway.Counter("gateway.memory.compactions|result=heap_too_large"));
        GC.KeepAlive(_pinned);
    }

    /// <summary>A gateway whose memory return acts on a drop of 20 connections, with a heap limit 48 MiB above the process's live heap now.</summary>
    private static async Task<(GatewayUnderTest Gateway, long MaxHeap)> StartWithHeapLimitAsync(TestBackend backend)
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        var before = GC.GetGCMemoryInfo();
        var maxHeap = before.HeapSizeBytes - before.FragmentedBytes + (48 * MiB);
        var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")),
            "--Gateway:Memory:MinConnectionDrop=20", "--Gateway:Memory:SettleTime=00:00:00.300", $"--Gateway:Memory:MaxHeapBytes={maxHeap}");
        return (gateway, maxHeap);
    }
}
