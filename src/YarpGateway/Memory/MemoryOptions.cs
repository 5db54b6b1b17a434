namespace YarpGateway.Memory;

/// <summary>
/// Options under <c>Gateway:Memory</c>: giving memory back to the system once many clients have left.
/// A collection that runs on its own marks the memory of closed connections free and reuses it for
/// the next ones, but keeps it: RSS stays where the peak left it. After a large drop in open
/// connections the gateway runs one compacting collection that also returns the free memory.
/// It stops every request while it runs, for a time that grows with the live heap (about 70 ms at
/// 40 MiB on one core, docs/performance-history.md), hence <see cref="MaxHeapBytes"/>.
/// </summary>
internal sealed class MemoryOptions
{
    public const string SectionName = "Gateway:Memory";

    /// <summary>
    /// Give memory back after open connections fell by at least <see cref="MinConnectionDrop"/> and
    /// to half their peak or less, and stayed there for <see cref="SettleTime"/>. Default true.
    /// </summary>
    public bool ReturnAfterDrop { get; set; } = true;

    /// <summary>
    /// How many fewer connections (WebSockets count once more, for their upgraded request) than at
    /// the peak since the last drop acted on. Default 256. At least 1.
    /// </summary>
    public int MinConnectionDrop { get; set; } = 256;

    /// <summary>How long the drop must hold (clients that reconnect at once bring nothing back). Default 5 s.</summary>
    public TimeSpan SettleTime { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// No compaction when the live heap, as a background collection finds it once the clients have
    /// left, is larger than this: the pause would be too long. Default 64 MiB (about 100 ms on one
    /// core). At least 1 MiB.
    /// </summary>
    public long MaxHeapBytes { get; set; } = DefaultMaxHeapBytes;

    /// <summary>The least time between two drops acted on (compacted or skipped). Default 30 s.</summary>
    public TimeSpan MinInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Hold new connections back (they wait in the listen queue) and answer new WebSockets 503 while the GC heap
    /// is at least this share of the most the runtime lets it use (in a container, by default three quarters of
    /// the memory limit), until it is under this less 0.1 (half of it, under 0.2; <see cref="MemoryPressure"/>). Default 0.8. Above 0,
    /// at most 1; 1 turns it off.
    /// </summary>
    public double RefuseNewAbove { get; set; } = 0.8;

    internal const long DefaultMaxHeapBytes = 64L * 1024 * 1024;
    internal const long MinHeapBytesLimit = 1024 * 1024;
}
