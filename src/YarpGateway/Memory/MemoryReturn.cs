using System.Globalization;
using YarpGateway.Configuration;
using YarpGateway.Endpoints;

namespace YarpGateway.Memory;

/// <summary>
/// Gives memory back to the system once many clients have left (<see cref="MemoryOptions"/>): once a
/// second it reads the open connections and, when <see cref="MemoryReturnTrigger"/> says so, runs one
/// blocking, compacting collection that also decommits the free memory
/// (<see cref="GCCollectionMode.Aggressive"/>). A background collection, which would not stop
/// requests, marks that memory free but keeps it committed (measured: nothing came back). Logs one
/// line per compaction, or per drop it skipped; nothing while the gateway is stopping.
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

    private readonly MemoryReturnTrigger _trigger = new();
    private readonly long _started = timeProvider.GetTimestamp();
    private ITimer? _timer;
    private int _sampling;
    private long _peak;

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
    internal long Peak => Volatile.Read(ref _peak);

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
                return;
            }

            var peak = _trigger.Peak;
            var info = GC.GetGCMemoryInfo();
            var live = info.HeapSizeBytes - info.FragmentedBytes;
            switch (_trigger.Observe(timeProvider.GetElapsedTime(_started), open, live, current))
            {
                case MemoryReturnDecision.Compact:
                    Compact(peak, open);
                    break;
                case MemoryReturnDecision.HeapTooLarge:
                    metrics.Skipped();
                    Log.Skipped(logger, peak, open, MiB(live), MiB(current.MaxHeapBytes));
                    break;
            }
        }
        finally
        {
            Volatile.Write(ref _peak, _trigger.Peak);
            Volatile.Write(ref _sampling, 0);
        }
    }

    private void Compact(long peak, long open)
    {
        var committedBefore = GC.GetGCMemoryInfo().TotalCommittedBytes;
        var rssBefore = Environment.WorkingSet;
        var started = timeProvider.GetTimestamp();
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        var pause = timeProvider.GetElapsedTime(started);
        var committedAfter = GC.GetGCMemoryInfo().TotalCommittedBytes;
        var rssAfter = Environment.WorkingSet;
        metrics.Compaction(Math.Max(0, committedBefore - committedAfter));
        Log.Returned(logger, peak, open, MiB(committedBefore), MiB(committedAfter), MiB(rssBefore), MiB(rssAfter),
            pause.TotalMilliseconds.ToString("0.0", CultureInfo.InvariantCulture));
    }

    private static string MiB(long bytes) => (bytes / (1024.0 * 1024)).ToString("0.0", CultureInfo.InvariantCulture);

    public void Dispose() => _timer?.Dispose();

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Open connections fell from {Peak} to {Open}: compacted the heap and gave memory back. GC heap committed {CommittedBefore} -> {CommittedAfter} MiB, RSS {RssBefore} -> {RssAfter} MiB; requests paused {PauseMs} ms.", EventName = "MemoryReturned")]
        public static partial void Returned(ILogger logger, long peak, long open, string committedBefore, string committedAfter, string rssBefore, string rssAfter, string pauseMs);

        [LoggerMessage(2, LogLevel.Information, "Open connections fell from {Peak} to {Open}, but the live heap ({LiveHeap} MiB) is over Gateway:Memory:MaxHeapBytes ({MaxHeap} MiB): not compacting, as the pause would be long. The free memory is kept for the next connections.", EventName = "MemoryReturnSkipped")]
        public static partial void Skipped(ILogger logger, long peak, long open, string liveHeap, string maxHeap);
    }
}
