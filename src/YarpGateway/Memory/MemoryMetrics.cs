using System.Diagnostics.Metrics;
using YarpGateway.Telemetry;

namespace YarpGateway.Memory;

/// <summary>Compactions after a drop in connections, by result, and the bytes they gave back (exported at 0 from start); the heap's limit and whether new clients are held back for it.</summary>
internal sealed class MemoryMetrics : IKnownSeries
{
    private static readonly KeyValuePair<string, object?> Compacted = new("result", "compacted");
    private static readonly KeyValuePair<string, object?> HeapTooLarge = new("result", "heap_too_large");

    private readonly Counter<long> _compactions;
    private readonly Counter<long> _returned;
    private long _compacted;
    private long _skipped;
    private long _returnedBytes;

    public MemoryMetrics(IMeterFactory meterFactory, MemoryPressure pressure)
    {
        var meter = meterFactory.Create(GatewayMeter.Name);
        _compactions = meter.CreateCounter<long>("gateway.memory.compactions", unit: "{compaction}",
            description: "Compacting collections after a drop in open connections, by result: compacted, or heap_too_large (skipped: the live heap was over Gateway:Memory:MaxHeapBytes).");
        _returned = meter.CreateCounter<long>("gateway.memory.returned", unit: "By",
            description: "Committed GC heap memory given back to the system by those compactions.");
        meter.CreateObservableGauge("gateway.memory.heap_limit", () => pressure.LimitBytes, unit: "By",
            description: "The most the GC heap may use (in a container, by default three quarters of its memory limit), as of the last reading.");
        meter.CreateObservableGauge("gateway.memory.refusing_new", () => pressure.IsHigh ? 1 : 0, unit: "{state}",
            description: "1 while the GC heap is over Gateway:Memory:RefuseNewAbove of that limit: new connections wait in the listen queue and new WebSockets get 503.");
        meter.CreateObservableCounter("gateway.memory.refused_upgrades", () => pressure.RefusedUpgrades, unit: "{request}",
            description: "WebSockets answered 503 because the GC heap was near the runtime's limit.");
    }

    /// <summary>Compactions run since start (for the status page).</summary>
    public long Compactions => Interlocked.Read(ref _compacted);

    /// <summary>Drops skipped for a heap over the limit since start.</summary>
    public long SkippedCompactions => Interlocked.Read(ref _skipped);

    /// <summary>Bytes the compactions gave back since start.</summary>
    public long ReturnedBytes => Interlocked.Read(ref _returnedBytes);

    public void Compaction(long returnedBytes)
    {
        Interlocked.Increment(ref _compacted);
        Interlocked.Add(ref _returnedBytes, returnedBytes);
        _compactions.Add(1, Compacted);
        _returned.Add(returnedBytes);
    }

    public void Skipped()
    {
        Interlocked.Increment(ref _skipped);
        _compactions.Add(1, HeapTooLarge);
    }

    public void Publish()
    {
        _compactions.Add(0, Compacted);
        _compactions.Add(0, HeapTooLarge);
        _returned.Add(0);
    }
}
