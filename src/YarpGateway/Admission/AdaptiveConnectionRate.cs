using YarpGateway.Telemetry;

namespace YarpGateway.Admission;

/// <summary>
/// Connection admission at the pace the gateway can absorb: a token bucket refilled every 10 ms at the
/// rate <see cref="AdaptiveRateController"/> sets every 100 ms from the worst delay it measured since:
/// the thread pool's queueing delay (the scheduler probe, and how late its next sample is), the socket
/// engine's (<see cref="SocketEngineProbe"/>: where requests run with inline completions, out of the
/// thread-pool probe's sight), and the time new connections' first requests waited between their first
/// bytes and the gateway's pipeline.
/// Rate changes are logged at most once a second.
/// </summary>
internal sealed partial class AdaptiveConnectionRate : IDisposable
{
    internal static readonly TimeSpan RefillPeriod = TimeSpan.FromMilliseconds(10);
    internal const int RefillsPerUpdate = 10;

    private readonly AdaptiveRateController _controller;
    private readonly SchedulerDelayProbe _probe;
    private readonly SocketEngineProbe? _socketProbe;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly ITimer _timer;
    private long _firstRequestWaitTicks;
    private int _refills;
    private long _lastLogged;
    private double _loggedRate;

    public AdaptiveConnectionRate(AdaptiveRateController controller, int burst, int queueLimit, SchedulerDelayProbe probe, SocketEngineProbe? socketProbe, TimeProvider timeProvider, ILogger logger)
    {
        _controller = controller;
        _probe = probe;
        _socketProbe = socketProbe;
        _timeProvider = timeProvider;
        _logger = logger;
        _loggedRate = controller.Rate;
        Bucket = new AdjustableTokenBucket(controller.Rate, burst, queueLimit, timeProvider);
        _timer = timeProvider.CreateTimer(static state => ((AdaptiveConnectionRate)state!).Tick(), this, RefillPeriod, RefillPeriod);
    }

    public AdjustableTokenBucket Bucket { get; }

    public double Rate => _controller.Rate;

    public TimeSpan TargetDelay => _controller.TargetDelay;

    /// <summary>The highest rate set so far.</summary>
    public double PeakRate { get; private set; }

    /// <summary>The delay the last update saw.</summary>
    public TimeSpan MeasuredDelay { get; private set; }

    /// <summary>A new connection's first request reached the pipeline this long after its first bytes.</summary>
    public void FirstRequestWaited(TimeSpan wait)
    {
        var ticks = wait.Ticks;
        var seen = Volatile.Read(ref _firstRequestWaitTicks);
        while (ticks > seen)
        {
            var previous = Interlocked.CompareExchange(ref _firstRequestWaitTicks, ticks, seen);
            if (previous == seen)
            {
                return;
            }

            seen = previous;
        }
    }

    internal void Tick()
    {
        Bucket.Refill();
        if (++_refills % RefillsPerUpdate == 0)
        {
            Update();
        }
    }

    private void Update()
    {
        var firstRequest = TimeSpan.FromTicks(Interlocked.Exchange(ref _firstRequestWaitTicks, 0));
        var scheduler = _probe.TakeMaxDelay();
        var late = _probe.SinceLastRun();
        var socket = _socketProbe?.TakeMaxDelay() ?? TimeSpan.Zero;
        var socketPending = _socketProbe?.Pending() ?? TimeSpan.Zero;
        var delay = Max(Max(firstRequest, scheduler), Max(late, Max(socket, socketPending)));
        MeasuredDelay = delay;
        var rate = _controller.Update(delay, Bucket.TakeStarved());
        Bucket.RatePerSecond = rate;
        PeakRate = Math.Max(PeakRate, rate);

        var now = _timeProvider.GetTimestamp();
        if (Math.Abs(rate - _loggedRate) >= _loggedRate * 0.2 && _timeProvider.GetElapsedTime(_lastLogged, now) >= TimeSpan.FromSeconds(1))
        {
            Log.RateChanged(_logger, _loggedRate, rate, delay.TotalMilliseconds, _controller.TargetDelay.TotalMilliseconds, Bucket.Queued);
            _loggedRate = rate;
            _lastLogged = now;
        }
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    public void Dispose()
    {
        _timer.Dispose();
        Bucket.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Connection admission rate {Before:0}/s -> {After:0}/s: measured delay {DelayMs:0.0} ms against a target of {TargetMs:0} ms; {Waiting} new connections waiting.", EventName = "AdmissionRateChanged")]
        public static partial void RateChanged(ILogger logger, double before, double after, double delayMs, double targetMs, int waiting);
    }
}
