using System.Threading.RateLimiting;

namespace YarpGateway.Admission;

/// <summary>
/// A token bucket whose rate can change at any time (the runtime's cannot), with a first-in first-out
/// queue of waiters. <see cref="Refill"/> adds tokens for the time that actually passed at the current
/// rate, up to the bucket's size, and hands them to the waiters in order.
/// </summary>
internal sealed class AdjustableTokenBucket : RateLimiter
{
    private static readonly RateLimitLease Granted = new Lease(true);
    private static readonly RateLimitLease Refused = new Lease(false);

    private readonly Lock _gate = new();
    private readonly LinkedList<Waiter> _waiters = new();
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
        List<Waiter>? served = null;
        lock (_gate)
        {
            var now = _timeProvider.GetTimestamp();
            var elapsed = _timeProvider.GetElapsedTime(_lastRefill, now).TotalSeconds;
            _lastRefill = now;
            var size = Math.Max(_burst, RatePerSecond * 0.02);
            _tokens = Math.Min(size, _tokens + (elapsed * RatePerSecond));
            while (_tokens >= 1 && _waiters.First is { } first)
            {
                _waiters.RemoveFirst();
                if (first.Value.TrySetGranted())
                {
                    _tokens--;
                    _granted++;
                    (served ??= []).Add(first.Value);
                }
            }
        }

        if (served is not null)
        {
            foreach (var waiter in served)
            {
                waiter.Complete(); // outside the lock: continuations may run inline
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
                return Granted;
            }

            _starved = true;
            return Refused;
        }
    }

    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        Waiter waiter;
        lock (_gate)
        {
            _idleSince = _timeProvider.GetTimestamp();
            if (_waiters.Count == 0 && _tokens >= permitCount)
            {
                _tokens -= permitCount;
                _granted++;
                return ValueTask.FromResult(Granted);
            }

            _starved = true;
            if (_waiters.Count >= _queueLimit)
            {
                return ValueTask.FromResult(Refused);
            }

            waiter = new Waiter(this);
            waiter.Node = _waiters.AddLast(waiter);
        }

        waiter.Register(cancellationToken);
        return new ValueTask<RateLimitLease>(waiter.Task);
    }

    private void Remove(Waiter waiter)
    {
        lock (_gate)
        {
            if (waiter.Node?.List is not null)
            {
                _waiters.Remove(waiter.Node);
            }
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            List<Waiter> waiting;
            lock (_gate)
            {
                waiting = [.. _waiters];
                _waiters.Clear();
            }

            foreach (var waiter in waiting)
            {
                waiter.Refuse();
            }
        }

        base.Dispose(disposing);
    }

    private sealed class Waiter(AdjustableTokenBucket bucket)
    {
        private readonly AdjustableTokenBucket _bucket = bucket;
        private readonly TaskCompletionSource<RateLimitLease> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private CancellationTokenRegistration _registration;
        private int _state; // 0 waiting, 1 granted, 2 cancelled or refused

        public LinkedListNode<Waiter>? Node { get; set; }

        public Task<RateLimitLease> Task => _completion.Task;

        public void Register(CancellationToken cancellationToken)
        {
            if (cancellationToken.CanBeCanceled)
            {
                _registration = cancellationToken.UnsafeRegister(static (state, token) =>
                {
                    var waiter = (Waiter)state!;
                    if (Interlocked.CompareExchange(ref waiter._state, 2, 0) == 0)
                    {
                        waiter._bucket.Remove(waiter);
                        waiter._completion.TrySetCanceled(token);
                    }
                }, this);
            }
        }

        public bool TrySetGranted() => Interlocked.CompareExchange(ref _state, 1, 0) == 0;

        public void Complete()
        {
            _registration.Dispose();
            _completion.TrySetResult(Granted);
        }

        public void Refuse()
        {
            if (Interlocked.CompareExchange(ref _state, 2, 0) == 0)
            {
                _registration.Dispose();
                _completion.TrySetResult(Refused);
            }
        }
    }

    private sealed class Lease(bool acquired) : RateLimitLease
    {
        public override bool IsAcquired { get; } = acquired;

        public override IEnumerable<string> MetadataNames => [];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            metadata = null;
            return false;
        }
    }
}
