using System.Globalization;
using YarpGateway.Configuration;
using YarpGateway.Endpoints;

namespace YarpGateway.Memory;

/// <summary>
/// Gives memory back to the system once many clients have left (<see cref="MemoryOptions"/>). Once a
/// second it reads the open connections; when <see cref="MemoryReturnTrigger"/> sees a drop that
/// held, it first measures: a background full collection, which does not stop requests, finds what
/// is still live now that they are gone (the last collection ran while they were here). If that is
/// at most <see cref="MemoryOptions.MaxHeapBytes"/>, one blocking, compacting collection
/// (<see cref="GCCollectionMode.Aggressive"/>) gives the free memory back; the background one marks
/// it free but keeps it committed (measured: nothing came back). One log line per drop either way;
/// nothing while the gateway is stopping.
/// </summary>
internal sealed partial class MemoryReturn(
    ReloadableOptions<MemoryOptions> options,
    TrafficCounters traffic,
    MemoryMetrics metrics,
    IHostApplicationLifetime lifetime,
    TimeProvider timeProvider,
    ILogger<MemoryReturn> logger) : IHostedService, IDisposable
{
    internal static readonly TimeSpan SampleInterval = TimeSpan.FromSeconds(1);

    /// <summary>The pinned object heap's index in <see cref="GCMemoryInfo.GenerationInfo"/> (0-2, then the large and pinned object heaps).</summary>
    private const int PinnedHeap = 4;

    /// <summary>Samples to wait for the background collection before giving up on this drop.</summary>
    private const int MaxMeasuringSamples = 30;

    private readonly MemoryReturnTrigger _trigger = new();
    private readonly long _started = timeProvider.GetTimestamp();
    private ITimer? _timer;
    private int _sampling;
    private Measuring? _measuring;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _timer = timeProvider.CreateTimer(static state => ((MemoryReturn)state!).Sample(), this, SampleInterval, SampleInterval);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _timer?.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>The most connections seen open since the last decision (once a second).</summary>
    internal long Peak => _trigger.Peak;

    /// <summary>A drop was decided and its background collection has not finished.</summary>
    internal bool IsMeasuring => Volatile.Read(ref _measuring) is not null;

    /// <summary>Connections as the trigger counts them: proxy connections, and once more each upgraded request (an HTTP/2 WebSocket is a stream, not a connection).</summary>
    private long OpenConnections => traffic.OpenConnections + traffic.UpgradedConnections;

    internal void Sample()
    {
        // The timer may call again while a compaction runs; one sampler at a time.
        if (Interlocked.Exchange(ref _sampling, 1) == 1)
        {
            return;
        }

        try
        {
            var current = options.Current;
            var open = OpenConnections;
            if (!current.ReturnAfterDrop || lifetime.ApplicationStopping.IsCancellationRequested)
            {
                _trigger.Reset(open);
                _measuring = null;
            }
            else if (_measuring is { } measuring)
            {
                Measure(measuring, current);
            }
            else
            {
                var peak = _trigger.Peak;
                if (_trigger.Observe(timeProvider.GetElapsedTime(_started), open, current))
                {
                    _measuring = new Measuring(peak, open, GC.GetGCMemoryInfo(GCKind.Background).Index, GC.GetGCMemoryInfo(GCKind.FullBlocking).Index);
                    GC.Collect(2, GCCollectionMode.Forced, blocking: false, compacting: false);
                }
            }
        }
        finally
        {
            Volatile.Write(ref _sampling, 0);
        }
    }

    // The full collection asked for is background unless the runtime runs them blocking (concurrent
    // collection off); either kind's newest record, once there is one, is the heap without the clients.
    private void Measure(Measuring measuring, MemoryOptions current)
    {
        var background = GC.GetGCMemoryInfo(GCKind.Background);
        var blocking = GC.GetGCMemoryInfo(GCKind.FullBlocking);
        var info = background.Index > measuring.BackgroundIndex ? background : blocking.Index > measuring.BlockingIndex ? blocking : (GCMemoryInfo?)null;
        if (info is not { } found)
        {
            _measuring = ++measuring.Samples > MaxMeasuringSamples ? null : measuring;
            return;
        }

        _measuring = null;

        // What the compaction would move: pinned memory (the pinned object heap, where Kestrel keeps its pool of
        // 4 KiB socket buffers, which outlives the connections that grew it) is never moved, so it is not counted.
        var generations = found.GenerationInfo;
        var pinned = generations.Length > PinnedHeap ? generations[PinnedHeap].SizeAfterBytes : 0;
        var live = found.HeapSizeBytes - found.FragmentedBytes - pinned;
        if (live > current.MaxHeapBytes)
        {
            metrics.Skipped();
            Log.Skipped(logger, measuring.Peak, measuring.Open, MiB(live), MiB(current.MaxHeapBytes));
            return;
        }

        var committedBefore = GC.GetGCMemoryInfo().TotalCommittedBytes;
        var rssBefore = Environment.WorkingSet;
        var started = timeProvider.GetTimestamp();
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        var pause = timeProvider.GetElapsedTime(started);
        var committedAfter = GC.GetGCMemoryInfo().TotalCommittedBytes;
        var rssAfter = Environment.WorkingSet;
        metrics.Compaction(Math.Max(0, committedBefore - committedAfter));
        Log.Returned(logger, measuring.Peak, measuring.Open, MiB(committedBefore), MiB(committedAfter), MiB(rssBefore), MiB(rssAfter),
            pause.TotalMilliseconds.ToString("0.0", CultureInfo.InvariantCulture));
    }

    private static string MiB(long bytes) => (bytes / (1024.0 * 1024)).ToString("0.0", CultureInfo.InvariantCulture);

    public void Dispose() => _timer?.Dispose();

    /// <summary>A decided drop waiting for its background collection: the counts it was decided on, and the collections' numbers then.</summary>
    private sealed class Measuring(long peak, long open, long backgroundIndex, long blockingIndex)
    {
        public long Peak { get; } = peak;

        public long Open { get; } = open;

        public long BackgroundIndex { get; } = backgroundIndex;

        public long BlockingIndex { get; } = blockingIndex;

        public int Samples { get; set; }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Open connections fell from {Peak} to {Open}: compacted the heap and gave memory back. GC heap committed {CommittedBefore} -> {CommittedAfter} MiB, RSS {RssBefore} -> {RssAfter} MiB; requests paused {PauseMs} ms.", EventName = "MemoryReturned")]
        public static partial void Returned(ILogger logger, long peak, long open, string committedBefore, string committedAfter, string rssBefore, string rssAfter, string pauseMs);

        [LoggerMessage(2, LogLevel.Information, "Open connections fell from {Peak} to {Open}, but the live heap ({LiveHeap} MiB) is over Gateway:Memory:MaxHeapBytes ({MaxHeap} MiB): not compacting, as the pause would be long. The free memory is kept for the next connections.", EventName = "MemoryReturnSkipped")]
        public static partial void Skipped(ILogger logger, long peak, long open, string liveHeap, string maxHeap);
    }
}
