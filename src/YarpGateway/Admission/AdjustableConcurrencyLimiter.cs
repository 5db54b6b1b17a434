using System.Threading.RateLimiting;

namespace YarpGateway.Admission;

/// <summary>
/// A concurrency limiter whose limit can change at any time (the runtime's cannot), with a
/// first-in first-out queue, and leases that report how long they were held (the request's latency)
/// to <see cref="GradientConcurrencyController"/>, which sets the limit. A lowered limit takes effect
/// as requests finish; nothing admitted is cut short.
/// </summary>
internal sealed class AdjustableConcurrencyLimiter : RateLimiter
{
    private readonly Lock _gate = new();
    private readonly WaiterQueue _waiters;
    private readonly int _queueLimit;
    private readonly TimeProvider _timeProvider;
    private readonly GradientConcurrencyController _controller;
    private int _limit;
    private int _inUse;
    private long _idleSince;

    public AdjustableConcurrencyLimiter(GradientConcurrencyController controller, int queueLimit, TimeProvider timeProvider)
    {
        _controller = controller;
        _queueLimit = queueLimit;
        _timeProvider = timeProvider;
        _limit = controller.Limit;
        _idleSince = timeProvider.GetTimestamp();
        _waiters = new WaiterQueue(_gate);
    }

    public int Limit => Volatile.Read(ref _limit);

    public int InUse => Volatile.Read(ref _inUse);

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

    public override TimeSpan? IdleDuration
    {
        get
        {
            lock (_gate)
            {
                return _inUse > 0 || _waiters.Count > 0 ? null : _timeProvider.GetElapsedTime(_idleSince);
            }
        }
    }

    public override RateLimiterStatistics? GetStatistics()
    {
        lock (_gate)
        {
            return new RateLimiterStatistics { CurrentAvailablePermits = Math.Max(0, _limit - _inUse), CurrentQueuedCount = _waiters.Count };
        }
    }

    protected override RateLimitLease AttemptAcquireCore(int permitCount)
    {
        lock (_gate)
        {
            return _waiters.Count == 0 && _inUse < _limit ? Grant() : PlainLease.Refused;
        }
    }

    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        LeaseWaiter waiter;
        lock (_gate)
        {
            if (_waiters.Count == 0 && _inUse < _limit)
            {
                return ValueTask.FromResult<RateLimitLease>(Grant());
            }

            if (_waiters.Count >= _queueLimit)
            {
                return ValueTask.FromResult(PlainLease.Refused);
            }

            waiter = _waiters.Enqueue();
        }

        waiter.Register(cancellationToken);
        return new ValueTask<RateLimitLease>(waiter.Task);
    }

    // Under the lock.
    private Lease Grant()
    {
        _inUse++;
        return new Lease(this, _inUse, _timeProvider.GetTimestamp());
    }

    private void Release(Lease lease)
    {
        var now = _timeProvider.GetTimestamp();
        if (_controller.Sample(_timeProvider.GetElapsedTime(lease.Started, now), lease.InFlight, now, _timeProvider))
        {
            Volatile.Write(ref _limit, _controller.Limit);
        }

        List<(LeaseWaiter Waiter, Lease Lease)>? granted = null;
        lock (_gate)
        {
            _inUse--;
            _idleSince = now;
            while (_inUse < _limit && _waiters.TakeFirst() is { } first)
            {
                if (first.TryClaim())
                {
                    (granted ??= []).Add((first, Grant()));
                }
            }
        }

        if (granted is not null)
        {
            foreach (var (waiter, next) in granted)
            {
                waiter.Complete(next); // outside the lock: continuations may run inline
            }
        }
    }

    private sealed class Lease(AdjustableConcurrencyLimiter limiter, int inFlight, long started) : MetadataFreeLease
    {
        private int _released;

        public int InFlight { get; } = inFlight;

        public long Started { get; } = started;

        public override bool IsAcquired => true;

        protected override void Dispose(bool disposing)
        {
            if (disposing && Interlocked.Exchange(ref _released, 1) == 0)
            {
                limiter.Release(this);
            }

            base.Dispose(disposing);
        }
    }
}
