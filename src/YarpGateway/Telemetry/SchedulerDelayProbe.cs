using System.Diagnostics.Metrics;
using YarpGateway.Configuration;

namespace YarpGateway.Telemetry;

/// <summary>
/// The thread pool's queueing delay, the .NET analogue of a runtime's poll delay: every
/// <see cref="TelemetryOptions.SchedulerProbeInterval"/> a work item is queued to the thread pool and
/// the time until it runs is recorded in <c>gateway.scheduler.delay</c>. It rises when the pool is
/// saturated, long before CPU does. The last samples feed the saturation log's p99.
/// The probe's clock is a dedicated thread, not a timer: timer callbacks run on the thread pool,
/// so a starved pool would stop the probe exactly when it should report.
/// </summary>
internal sealed class SchedulerDelayProbe : IHostedService, IDisposable
{
    private readonly Histogram<double> _delay;
    private readonly TimeProvider _timeProvider;
    private readonly ReloadableOptions<TelemetryOptions> _options;
    private readonly double[] _recent = new double[256];
    private int _recentCount;
    private long _recentNext;
    private long _lastRun;
    private long _maxSinceTakeTicks;
    private readonly ManualResetEventSlim _stop = new();
    private Thread? _thread;

    public SchedulerDelayProbe(SchedulerMetrics metrics, TimeProvider timeProvider, ReloadableOptions<TelemetryOptions> options)
    {
        _delay = metrics.Delay;
        _timeProvider = timeProvider;
        _options = options;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        Volatile.Write(ref _lastRun, _timeProvider.GetTimestamp());
        _thread = new Thread(static state => ((SchedulerDelayProbe)state!).Run())
        {
            IsBackground = true,
            Name = "gateway-scheduler-probe",
        };
        _thread.Start(this);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _stop.Set();
        return Task.CompletedTask;
    }

    private void Run()
    {
        // The first sample at start, not an interval later: a scrape as soon as the gateway listens has the series that
        // the dashboard and the alerts query (a native AOT build started and served a request within the first 100 ms).
        do
        {
            Probe();
        }
        while (!_stop.Wait(_options.Current.SchedulerProbeInterval));
    }

    /// <summary>The 99th percentile of the recent samples (about the last <c>256 × interval</c>), in seconds.</summary>
    public double RecentP99() => RecentPercentile(0.99);

    /// <summary>The median of the recent samples, in seconds: what a typical work item waits now.</summary>
    public double RecentMedian() => RecentPercentile(0.5);

    /// <summary>
    /// How long the thread pool is late with the next probe item: the time since it last ran one,
    /// less the probe interval (0 before start). A starved pool runs none, so its samples stop coming
    /// exactly when they would be largest; this keeps growing instead.
    /// </summary>
    public TimeSpan SinceLastRun()
    {
        var last = Volatile.Read(ref _lastRun);
        var late = last == 0 ? TimeSpan.Zero : _timeProvider.GetElapsedTime(last) - _options.Current.SchedulerProbeInterval;
        return late > TimeSpan.Zero ? late : TimeSpan.Zero;
    }

    /// <summary>The longest delay recorded since the last call (zero when none was), for a controller that reads it periodically.</summary>
    public TimeSpan TakeMaxDelay() => TimeSpan.FromTicks(Interlocked.Exchange(ref _maxSinceTakeTicks, 0));

    private double RecentPercentile(double percentile)
    {
        double[] samples;
        lock (_recent)
        {
            samples = _recent[..Math.Min(_recentCount, _recent.Length)];
        }

        if (samples.Length == 0)
        {
            return 0;
        }

        Array.Sort(samples);
        return samples[Math.Clamp((int)Math.Ceiling(percentile * samples.Length) - 1, 0, samples.Length - 1)];
    }

    private void Probe()
    {
        var queued = _timeProvider.GetTimestamp();
        ThreadPool.UnsafeQueueUserWorkItem(static state => state.Self.Record(state.Queued), (Self: this, Queued: queued), preferLocal: false);
    }

    private void Record(long queued)
    {
        var now = _timeProvider.GetTimestamp();
        Volatile.Write(ref _lastRun, now);
        var elapsed = _timeProvider.GetElapsedTime(queued, now);
        var seconds = elapsed.TotalSeconds;
        _delay.Record(seconds);
        for (var seen = Volatile.Read(ref _maxSinceTakeTicks); elapsed.Ticks > seen;)
        {
            var previous = Interlocked.CompareExchange(ref _maxSinceTakeTicks, elapsed.Ticks, seen);
            if (previous == seen)
            {
                break;
            }

            seen = previous;
        }

        lock (_recent)
        {
            _recent[_recentNext++ % _recent.Length] = seconds;
            _recentCount = Math.Min(_recentCount + 1, _recent.Length);
        }
    }

    public void Dispose()
    {
        // The probe thread may be inside _stop.Wait: disposing the event under it threw on that thread and ended the
        // process. Set wakes it at once; the event is disposed only once the thread has left it.
        _stop.Set();
        if (_thread is null || _thread.Join(TimeSpan.FromSeconds(5)))
        {
            _stop.Dispose();
        }
    }
}
