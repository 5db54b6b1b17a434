using System.Threading.RateLimiting;

namespace YarpGateway.Admission;

/// <summary>
/// A token bucket whose rate can change at any time (the runtime's cannot), with a first-in first-out
/// queue of waiters. <see cref="Refill"/> adds tokens for the time that actually passed at the current
/// rate, up to the bucket's size, and hands them to the waiters in order.
/// </summary>
internal sealed class AdjustableTokenBucket : RateLimiter
{
    private readonly Lock _gate = new();
    private readonly WaiterQueue _waiters;
    private readonly TimeProvider _timeProvider;
    private readonly int _burst;
    private readonly int _queueLimit;
    private double _tokens;
    private long _lastRefill;
    private long _idleSince;
    private bool _starved;
    private long _granted;

    public AdjustableTokenBucket(double ratePerSecond, int burst, int queueLimit, TimeProvider timeProvider)
    {
        _timeProvider = timeProvider;
        _burst = Math.Max(1, burst);
        _queueLimit = queueLimit;
        _tokens = _burst;
        RatePerSecond = ratePerSecond;
        _lastRefill = _idleSince = timeProvider.GetTimestamp();
        _waiters = new WaiterQueue(_gate);
    }

    /// <summary>Tokens added per second from now on.</summary>
    public double RatePerSecond { get; set; }

    /// <summary>Connections waiting for a token now.</summary>
    public int Queued
    {
        get
        {
            lock (_gate)
            {
                return _waiters.Count;
            }
        }
    }

    /// <summary>Whether a request found the bucket empty since the last call (demand above the rate).</summary>
    public bool TakeStarved()
    {
        lock (_gate)
        {
            var starved = _starved || _waiters.Count > 0;
            _starved = false;
            return starved;
        }
    }

    public override TimeSpan? IdleDuration
    {
        get
        {
            lock (_gate)
            {
                return _waiters.Count > 0 ? null : _timeProvider.GetElapsedTime(_idleSince);
            }
        }
    }

    public override RateLimiterStatistics? GetStatistics()
    {
        lock (_gate)
        {
            return new RateLimiterStatistics
            {
                CurrentAvailablePermits = (long)_tokens,
                CurrentQueuedCount = _waiters.Count,
                TotalSuccessfulLeases = _granted,
            };
        }
    }

    /// <summary>Adds the tokens earned since the last refill (the bucket holds at least 20 ms' worth at the current rate) and serves waiters in order.</summary>
    public void Refill()
    {
        List<LeaseWaiter>? served = null;
        lock (_gate)
        {
            var now = _timeProvider.GetTimestamp();
            var elapsed = _timeProvider.GetElapsedTime(_lastRefill, now).TotalSeconds;
            _lastRefill = now;
            var size = Math.Max(_burst, RatePerSecond * 0.02);
            _tokens = Math.Min(size, _tokens + (elapsed * RatePerSecond));
            while (_tokens >= 1 && _waiters.TakeFirst() is { } first)
            {
                if (first.TryClaim())
                {
                    _tokens--;
                    _granted++;
                    (served ??= []).Add(first);
                }
            }
        }

        if (served is not null)
        {
            foreach (var waiter in served)
            {
                waiter.Complete(PlainLease.Granted); // outside the lock: continuations may run inline
            }
        }
    }

    protected override RateLimitLease AttemptAcquireCore(int permitCount)
    {
        lock (_gate)
        {
            _idleSince = _timeProvider.GetTimestamp();
            if (_waiters.Count == 0 && _tokens >= permitCount)
            {
                _tokens -= permitCount;
                _granted++;
                return PlainLease.Granted;
            }

            _starved = true;
            return PlainLease.Refused;
        }
    }

    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        LeaseWaiter waiter;
        lock (_gate)
        {
            _idleSince = _timeProvider.GetTimestamp();
            if (_waiters.Count == 0 && _tokens >= permitCount)
            {
                _tokens -= permitCount;
                _granted++;
                return ValueTask.FromResult(PlainLease.Granted);
            }

            _starved = true;
            if (_waiters.Count >= _queueLimit)
            {
                return ValueTask.FromResult(PlainLease.Refused);
            }

            waiter = _waiters.Enqueue();
        }

        waiter.Register(cancellationToken);
        return new ValueTask<RateLimitLease>(waiter.Task);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            List<LeaseWaiter> waiting;
            lock (_gate)
            {
                waiting = _waiters.TakeAll();
            }

            foreach (var waiter in waiting)
            {
                waiter.Refuse(PlainLease.Refused);
            }
        }

        base.Dispose(disposing);
    }
}
