using YarpGateway.Telemetry;

namespace YarpGateway.Admission;

/// <summary>
/// Connection admission at the pace the gateway can absorb: a token bucket refilled every 10 ms at the
/// rate <see cref="AdaptiveRateController"/> sets every 100 ms from the worst delay it measured since:
/// the thread pool's queueing delay (the scheduler probe, and how late its next sample is) and the
/// socket engine's (<see cref="SocketEngineProbe"/>: where requests run with inline completions, out of
/// the thread-pool probe's sight). Both are the gateway's own lateness: nothing a client does (sending
/// slowly, a long TLS round trip) moves them.
/// The target is the stricter <see cref="AdaptiveAdmissionOptions.EstablishedTargetDelay"/> while open connections are
/// busy (<see cref="EstablishedRequests"/>: at least the configured rate of requests past a connection's first, in an
/// update's 100 ms, and for <see cref="EstablishedHold"/> after), so that a storm of new connections waits for the
/// open ones' requests, not the other way round.
/// Rate changes are logged at most once a second; a drift back once nobody waits, only when it arrives.
/// The same update sets the accept window's size (<see cref="AcceptWindow.Update"/>), when there is one.
/// </summary>
internal sealed partial class AdaptiveConnectionRate : IDisposable
{
    internal static readonly TimeSpan RefillPeriod = TimeSpan.FromMilliseconds(10);
    internal const int RefillsPerUpdate = 10;

    /// <summary>How long the established target holds after the last update that saw open connections busy.</summary>
    internal static readonly TimeSpan EstablishedHold = TimeSpan.FromSeconds(1);

    private readonly AdaptiveRateController _controller;
    private readonly SchedulerDelayProbe _probe;
    private readonly SocketEngineProbe? _socketProbe;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly ITimer _timer;
    private readonly AcceptWindow? _window;
    private int _refills;
    private int _ticking;
    private long _lastLogged;
    private double _loggedRate;
    private readonly EstablishedRequests? _established;
    private readonly int _establishedRate;
    private long _establishedSeen;
    private long _lastUpdate;
    private long? _lastBusy;

    /// <param name="established">Requests past connections' first, and the rate a second of them from which the established target applies (0: always); none, never.</param>
    public AdaptiveConnectionRate(AdaptiveRateController controller, int burst, int queueLimit, SchedulerDelayProbe probe, SocketEngineProbe? socketProbe, TimeProvider timeProvider, ILogger logger, AcceptWindow? window = null,
        (EstablishedRequests Requests, int RatePerSecond)? established = null)
    {
        _window = window;
        if (established is var (requests, ratePerSecond))
        {
            _established = requests;
            _establishedRate = ratePerSecond;
            _establishedSeen = requests.Total;
        }

        _lastUpdate = timeProvider.GetTimestamp();
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

    /// <summary>The target the last update kept to: the established one while open connections were busy.</summary>
    public TimeSpan Target => _controller.Target;

    /// <summary>Whether the last update held new connections to the established target.</summary>
    public bool ProtectingEstablished { get; private set; }

    /// <summary>The highest rate set so far.</summary>
    public double PeakRate { get; private set; }

    /// <summary>The delay the last update saw.</summary>
    public TimeSpan MeasuredDelay { get; private set; }

    /// <summary>The largest delay an update saw since the last <see cref="ResetMaxMeasuredDelay"/> (tests, diagnostics).</summary>
    internal TimeSpan MaxMeasuredDelay { get; private set; }

    internal void ResetMaxMeasuredDelay() => MaxMeasuredDelay = TimeSpan.Zero;

    /// <summary>Updates so far (tests, diagnostics).</summary>
    internal int Updates { get; private set; }

    internal void Tick()
    {
        // Timer callbacks overlap when the pool runs them late; one at a time, the rest skipped.
        if (Interlocked.Exchange(ref _ticking, 1) != 0)
        {
            return;
        }

        try
        {
            Bucket.Refill();
            if (++_refills % RefillsPerUpdate == 0)
            {
                Update();
            }
        }
        finally
        {
            Volatile.Write(ref _ticking, 0);
        }
    }

    private void Update()
    {
        var scheduler = Max(_probe.TakeMaxDelay(), _probe.SinceLastRun());
        var socket = _socketProbe is null ? TimeSpan.Zero : Max(_socketProbe.TakeMaxDelay(), _socketProbe.Pending());
        var delay = Max(scheduler, socket);
        MeasuredDelay = delay;
        MaxMeasuredDelay = Max(MaxMeasuredDelay, delay);
        Updates++;
        var now = _timeProvider.GetTimestamp();
        var busy = EstablishedBusy(now);
        var rate = _controller.Update(delay, Bucket.TakeStarved(), busy);
        ProtectingEstablished = busy; // after the controller's target, which readers take with it
        Bucket.RatePerSecond = rate;
        _window?.Update(delay, _controller.Target);
        PeakRate = Math.Max(PeakRate, rate);

        if (_controller.ShouldLog(_loggedRate, rate, _timeProvider.GetElapsedTime(_lastLogged, now)))
        {
            Log.RateChanged(_logger, _loggedRate, rate, delay.TotalMilliseconds, _controller.Target.TotalMilliseconds, Bucket.Queued, _window?.Size ?? 0);
            _loggedRate = rate;
            _lastLogged = now;
        }
    }

    /// <summary>
    /// Whether open connections sent at least the established rate of requests since the last update, or did within
    /// <see cref="EstablishedHold"/>: a storm that delays their requests must not turn their protection off.
    /// </summary>
    private bool EstablishedBusy(long now)
    {
        var elapsed = _timeProvider.GetElapsedTime(_lastUpdate, now);
        _lastUpdate = now;
        if (_established is null)
        {
            return false;
        }

        var total = _established.Total;
        var requests = total - _establishedSeen;
        _establishedSeen = total;
        if (_establishedRate == 0 || (elapsed > TimeSpan.Zero && requests >= _establishedRate * elapsed.TotalSeconds))
        {
            _lastBusy = now;
        }

        return _lastBusy is { } busy && _timeProvider.GetElapsedTime(busy, now) < EstablishedHold;
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    public void Dispose()
    {
        _timer.Dispose();
        Bucket.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Connection admission rate {Before:0}/s -> {After:0}/s: measured delay {DelayMs:0.0} ms against a target of {TargetMs:0} ms; {Waiting} new connections waiting; accept window {Window} places.", EventName = "AdmissionRateChanged")]
        public static partial void RateChanged(ILogger logger, double before, double after, double delayMs, double targetMs, int waiting, int window);
    }
}
