using System.Threading.RateLimiting;

namespace YarpGateway.Admission;

/// <summary>
/// A fixed concurrency limit with a bounded first-in first-out queue, for the global, route and
/// cluster limits. The runtime's <see cref="ConcurrencyLimiter"/> takes its lock and allocates a lease
/// on every acquire and every release; here a free slot is taken with one compare-and-swap on a
/// counter and given back with one decrement, and the lock is taken only while requests queue.
/// <list type="bullet">
/// <item>Fairness: while anyone waits, a newcomer joins the queue instead of taking a slot that comes
/// free, and a released slot goes straight to the oldest waiter.</item>
/// <item>No allocation on the fast path: every permit is the same lease object, and disposing it gives
/// back one slot, so each holder disposes it exactly once (as <c>using</c> does). A waiter costs its
/// queue entry.</item>
/// </list>
/// </summary>
internal sealed class FifoConcurrencyLimiter : RateLimiter
{
    private readonly Lock _gate = new();
    private readonly WaiterQueue _waiters;
    private readonly int _limit;
    private readonly int _queueLimit;
    private readonly SlotLease _lease;
    private int _inUse;

    public FifoConcurrencyLimiter(int limit, int queueLimit)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(queueLimit);
        _limit = limit;
        _queueLimit = queueLimit;
        _lease = new SlotLease(this);
        _waiters = new WaiterQueue(_gate);
    }

    public int InUse => Volatile.Read(ref _inUse);

    public int Queued => _waiters.Count;

    /// <summary>Null while a slot is held or a request waits; not otherwise tracked (nothing here asks how long it has been idle).</summary>
    public override TimeSpan? IdleDuration => InUse == 0 && Queued == 0 ? TimeSpan.Zero : null;

    public override RateLimiterStatistics? GetStatistics()
        => new() { CurrentAvailablePermits = Math.Max(0, _limit - InUse), CurrentQueuedCount = Queued };

    protected override RateLimitLease AttemptAcquireCore(int permitCount)
    {
        ArgumentOutOfRangeException.ThrowIfNotEqual(permitCount, 1);
        return _waiters.Count == 0 && TryTake() ? _lease : PlainLease.Refused;
    }

    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        if (AttemptAcquireCore(permitCount) is { IsAcquired: true } lease)
        {
            return ValueTask.FromResult(lease);
        }

        LeaseWaiter waiter;
        List<LeaseWaiter>? granted;
        lock (_gate)
        {
            if (_waiters.Count >= _queueLimit)
            {
                return ValueTask.FromResult(PlainLease.Refused);
            }

            waiter = _waiters.Enqueue();

            // A slot may have come free between the fast path and the queue (its releaser saw no
            // waiter): look again now that this waiter is counted.
            granted = GrantWhileFree();
        }

        Complete(granted);
        if (!waiter.Task.IsCompleted)
        {
            waiter.Register(cancellationToken);
        }

        return new ValueTask<RateLimitLease>(waiter.Task);
    }

    // A free slot first goes to the oldest waiter: counted (_inUse unchanged) and handed over.
    private void Release()
    {
        if (_waiters.Count > 0 && TryHandOver())
        {
            return;
        }

        Interlocked.Decrement(ref _inUse);

        // A waiter counted after the check above found no slot; the one just freed is its.
        if (_waiters.Count > 0)
        {
            List<LeaseWaiter>? granted;
            lock (_gate)
            {
                granted = GrantWhileFree();
            }

            Complete(granted);
        }
    }

    private bool TryTake()
    {
        var current = Volatile.Read(ref _inUse);
        while (current < _limit)
        {
            var seen = Interlocked.CompareExchange(ref _inUse, current + 1, current);
            if (seen == current)
            {
                return true;
            }

            current = seen;
        }

        return false;
    }

    private bool TryHandOver()
    {
        LeaseWaiter? next = null;
        lock (_gate)
        {
            while (next is null && _waiters.TakeFirst() is { } first)
            {
                if (first.TryClaim())
                {
                    next = first;
                }
            }
        }

        next?.Complete(_lease); // outside the lock: continuations may run inline
        return next is not null;
    }

    // Under the lock.
    private List<LeaseWaiter>? GrantWhileFree()
    {
        List<LeaseWaiter>? granted = null;
        while (_waiters.Count > 0 && TryTake())
        {
            var first = _waiters.TakeFirst()!;
            if (first.TryClaim())
            {
                (granted ??= []).Add(first);
            }
            else
            {
                Interlocked.Decrement(ref _inUse); // cancelled meanwhile: the slot goes to the next one
            }
        }

        return granted;
    }

    private void Complete(List<LeaseWaiter>? granted)
    {
        if (granted is not null)
        {
            foreach (var waiter in granted)
            {
                waiter.Complete(_lease);
            }
        }
    }

    /// <summary>Every permit of one limiter: disposing it gives back one slot.</summary>
    private sealed class SlotLease(FifoConcurrencyLimiter limiter) : MetadataFreeLease
    {
        public override bool IsAcquired => true;

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                limiter.Release();
            }

            base.Dispose(disposing); // does nothing: the lease is never done with
        }
    }
}
