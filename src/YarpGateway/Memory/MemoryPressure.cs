using YarpGateway.Configuration;

namespace YarpGateway.Memory;

/// <summary>
/// New clients are held back while the GC heap is near the most the runtime may use, so that the gateway does not
/// run out of memory with every connection on it. In a container .NET caps the GC heap (by default at three
/// quarters of the memory limit); at that cap allocations fail, and the runtime ended the process ("Internal CLR
/// error") with every connection (tried: a 64 MiB cap, HTTP/2 clients opening idle WebSockets; it died at 4,198).
/// Above <see cref="MemoryOptions.RefuseNewAbove"/> of the cap the proxy endpoint accepts no new connection (they
/// wait in the listen queue, as at <c>MaxOpen</c>; one already waiting in accept when it went high is still taken)
/// and new WebSockets get 503 with <c>Retry-After</c>; requests on
/// open connections go on. Under the threshold less a tenth (<see cref="ResumeBelow"/>) it takes them again. The heap is read from the GC's
/// last collection every 100 ms (a storm of WebSockets fills it within a second); while high, a background (non-blocking) full collection every 5 s keeps the
/// reading current when traffic is too quiet to cause one. Changes are logged once each.
/// </summary>
internal sealed partial class MemoryPressure : IHostedService, IDisposable
{
    private static readonly TimeSpan SampleInterval = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan RefreshInterval = TimeSpan.FromSeconds(5);

    private readonly ReloadableOptions<MemoryOptions> _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<MemoryPressure> _logger;
    private readonly Func<(long HeapBytes, long LimitBytes)> _read;
    private readonly Action _refresh;
    private readonly Lock _lock = new();
    private ITimer? _timer;
    private TaskCompletionSource? _eased;
    private volatile bool _high;
    private long _highSince;
    private long _lastRefresh;
    private long _refusedUpgrades;
    private long _limitBytes;
    private int _sampling;

    public MemoryPressure(ReloadableOptions<MemoryOptions> options, TimeProvider timeProvider, ILogger<MemoryPressure> logger)
        : this(options, timeProvider, logger, ReadGc, static () => GC.Collect(2, GCCollectionMode.Forced, blocking: false))
    {
    }

    internal MemoryPressure(ReloadableOptions<MemoryOptions> options, TimeProvider timeProvider, ILogger<MemoryPressure> logger, Func<(long HeapBytes, long LimitBytes)> read, Action refresh)
    {
        _options = options;
        _timeProvider = timeProvider;
        _logger = logger;
        _read = read;
        _refresh = refresh;
    }

    /// <summary>Whether new connections and WebSockets are held back now.</summary>
    public bool IsHigh => _high;

    /// <summary>The most the GC heap may use, as of the last reading (bytes).</summary>
    public long LimitBytes => Interlocked.Read(ref _limitBytes);

    /// <summary>WebSockets refused for memory since start.</summary>
    public long RefusedUpgrades => Interlocked.Read(ref _refusedUpgrades);

    /// <summary>Completes at once unless memory is high; then when it eases (or <paramref name="cancellationToken"/> fires).</summary>
    public ValueTask WaitUntilEasedAsync(CancellationToken cancellationToken)
    {
        if (!_high)
        {
            return ValueTask.CompletedTask;
        }

        Task eased;
        lock (_lock)
        {
            if (!_high || _eased is null)
            {
                return ValueTask.CompletedTask;
            }

            eased = _eased.Task;
        }

        return new ValueTask(eased.WaitAsync(cancellationToken));
    }

    /// <summary>For a WebSocket: true unless memory is high; then answers 503 and returns false.</summary>
    public bool TryAdmitUpgrade(HttpContext context, TimeSpan retryAfter)
    {
        if (!_high)
        {
            return true;
        }

        Interlocked.Increment(ref _refusedUpgrades);
        Admission.RequestAdmission.Reject(context, retryAfter);
        return false;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _timer = _timeProvider.CreateTimer(static state => ((MemoryPressure)state!).Sample(), this, SampleInterval, SampleInterval);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _timer?.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>One reading; a change of state is logged and, when memory eases, waiting accepts go on.</summary>
    internal void Sample()
    {
        if (Interlocked.Exchange(ref _sampling, 1) == 1)
        {
            return; // the timer may call again while a reading runs: one at a time
        }

        try
        {
            SampleOnce();
        }
        finally
        {
            Volatile.Write(ref _sampling, 0);
        }
    }

    private void SampleOnce()
    {
        var (heap, limit) = _read();
        Interlocked.Exchange(ref _limitBytes, limit);
        var threshold = _options.Current.RefuseNewAbove;
        if (limit <= 0 || threshold >= 1)
        {
            Ease(heap, limit, threshold);
            return;
        }

        var share = (double)heap / limit;
        var now = _timeProvider.GetTimestamp();
        if (!_high && share >= threshold)
        {
            Log.High(_logger, heap / 1048576.0, share * 100, limit / 1048576.0, threshold, ResumeBelow(threshold) * 100); // said before it applies
            lock (_lock)
            {
                _eased = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _high = true;
                _highSince = now;
                _lastRefresh = now;
            }
        }
        else if (_high && share < ResumeBelow(threshold))
        {
            Ease(heap, limit, threshold);
        }
        else if (_high && _timeProvider.GetElapsedTime(_lastRefresh, now) >= RefreshInterval)
        {
            _lastRefresh = now;
            _refresh(); // a quiet gateway collects too seldom for the reading to show what has been freed
        }
    }

    /// <summary>
    /// Where new clients are taken again: 0.1 under <see cref="MemoryOptions.RefuseNewAbove"/>, or half of it when it is
    /// under 0.2 (so that a low threshold can be left at all).
    /// </summary>
    internal static double ResumeBelow(double threshold) => threshold >= 0.2 ? threshold - 0.1 : threshold / 2;

    private void Ease(long heap, long limit, double threshold)
    {
        if (!_high)
        {
            return;
        }

        // Said before it applies (one sampler at a time: nothing else changes the state meanwhile).
        Log.Eased(_logger, heap / 1048576.0, limit > 0 ? (double)heap / limit * 100 : 0, _timeProvider.GetElapsedTime(Interlocked.Read(ref _highSince)).TotalSeconds, RefusedUpgrades, threshold);
        TaskCompletionSource? eased;
        lock (_lock)
        {
            _high = false;
            eased = _eased;
            _eased = null;
        }

        eased?.TrySetResult();
    }

    private static (long HeapBytes, long LimitBytes) ReadGc()
    {
        var info = GC.GetGCMemoryInfo();
        return (info.HeapSizeBytes, info.TotalAvailableMemoryBytes);
    }

    public void Dispose() => _timer?.Dispose();

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "The GC heap is {HeapMiB:F0} MiB, {Percent:F0} % of the {LimitMiB:F0} MiB the runtime may use (Gateway:Memory:RefuseNewAbove {Threshold}): new connections wait in the listen queue and new WebSockets get 503 until it is under {ResumePercent:F0} %. Open connections are served. Add replicas, or raise the pod's memory limit.", EventName = "MemoryHigh")]
        public static partial void High(ILogger logger, double heapMiB, double percent, double limitMiB, double threshold, double resumePercent);

        [LoggerMessage(2, LogLevel.Information, "The GC heap is down to {HeapMiB:F0} MiB ({Percent:F0} % of the runtime's limit): taking new connections and WebSockets again after {Seconds:F0} s; {RefusedUpgrades} WebSockets refused since start (Gateway:Memory:RefuseNewAbove {Threshold}).", EventName = "MemoryEased")]
        public static partial void Eased(ILogger logger, double heapMiB, double percent, double seconds, long refusedUpgrades, double threshold);
    }
}
