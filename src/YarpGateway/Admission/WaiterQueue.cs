namespace YarpGateway.Admission;

/// <summary>
/// The first-in first-out queue of one of the gateway's limiters (<see cref="FifoConcurrencyLimiter"/>,
/// <see cref="AdjustableConcurrencyLimiter"/>, <see cref="AdjustableTokenBucket"/>). <see cref="Enqueue"/>,
/// <see cref="TakeFirst"/> and <see cref="TakeAll"/> are called under the limiter's lock; a waiter whose
/// token is cancelled takes itself off by taking that same lock. <see cref="Count"/> may be read
/// without the lock: it changes with interlocked writes.
/// </summary>
internal sealed class WaiterQueue
{
    private readonly Lock _gate;
    private readonly LinkedList<LeaseWaiter> _waiters = new();
    private readonly Action<LeaseWaiter> _remove;
    private int _count;

    public WaiterQueue(Lock gate)
    {
        _gate = gate;
        _remove = Remove;
    }

    public int Count => Volatile.Read(ref _count);

    /// <summary>Under the lock: a new waiter at the back, counted with a full fence (a limiter may look for a free slot right after).</summary>
    public LeaseWaiter Enqueue()
    {
        var waiter = new LeaseWaiter(_remove);
        waiter.Node = _waiters.AddLast(waiter);
        Interlocked.Increment(ref _count);
        return waiter;
    }

    /// <summary>Under the lock: the oldest waiter, off the queue; it may have been cancelled meanwhile (<see cref="LeaseWaiter.TryClaim"/> says).</summary>
    public LeaseWaiter? TakeFirst()
    {
        if (_waiters.First is not { } first)
        {
            return null;
        }

        _waiters.RemoveFirst();
        Interlocked.Decrement(ref _count);
        return first.Value;
    }

    /// <summary>Under the lock: every waiter, oldest first, and the queue emptied.</summary>
    public List<LeaseWaiter> TakeAll()
    {
        List<LeaseWaiter> all = [.. _waiters];
        _waiters.Clear();
        Interlocked.Exchange(ref _count, 0);
        return all;
    }

    private void Remove(LeaseWaiter waiter)
    {
        lock (_gate)
        {
            if (waiter.Node?.List is not null)
            {
                _waiters.Remove(waiter.Node);
                Interlocked.Decrement(ref _count);
            }
        }
    }
}
