using System.Threading.RateLimiting;

namespace YarpGateway.Admission;

/// <summary>
/// A request waiting in one of the gateway's limiters' first-in first-out queues (<see cref="WaiterQueue"/>,
/// kept under the limiter's own lock). The waiter ends exactly once: claimed by the limiter (then
/// <see cref="Complete"/>), cancelled by its token (it then takes itself off the queue), or refused.
/// </summary>
internal sealed class LeaseWaiter(Action<LeaseWaiter> remove)
{
    private readonly Action<LeaseWaiter> _remove = remove;
    private readonly TaskCompletionSource<RateLimitLease> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private CancellationTokenRegistration _registration;
    private int _state; // 0 waiting, 1 claimed, 2 cancelled or refused

    /// <summary>Its place in the limiter's queue.</summary>
    public LinkedListNode<LeaseWaiter>? Node { get; set; }

    public Task<RateLimitLease> Task => _completion.Task;

    public void Register(CancellationToken cancellationToken)
    {
        if (cancellationToken.CanBeCanceled)
        {
            _registration = cancellationToken.UnsafeRegister(static (state, token) =>
            {
                var waiter = (LeaseWaiter)state!;
                if (Interlocked.CompareExchange(ref waiter._state, 2, 0) == 0)
                {
                    waiter._remove(waiter);
                    waiter._completion.TrySetCanceled(token);
                }
            }, this);
        }
    }

    /// <summary>Called by the limiter, under its lock, when a permit is there for this waiter; false if it was cancelled meanwhile.</summary>
    public bool TryClaim() => Interlocked.CompareExchange(ref _state, 1, 0) == 0;

    /// <summary>After <see cref="TryClaim"/>, outside the limiter's lock (continuations may run inline).</summary>
    public void Complete(RateLimitLease lease)
    {
        _registration.Dispose();
        _completion.TrySetResult(lease);
    }

    /// <summary>Ends the wait with <paramref name="refused"/>, unless it has ended already.</summary>
    public void Refuse(RateLimitLease refused)
    {
        if (Interlocked.CompareExchange(ref _state, 2, 0) == 0)
        {
            _registration.Dispose();
            _completion.TrySetResult(refused);
        }
    }
}

/// <summary>The gateway's leases carry no metadata (no retry-after hint: admission answers with its own).</summary>
internal abstract class MetadataFreeLease : RateLimitLease
{
    public override IEnumerable<string> MetadataNames => [];

    public override bool TryGetMetadata(string metadataName, out object? metadata)
    {
        metadata = null;
        return false;
    }
}

/// <summary>A lease that holds nothing: the gateway's limiters' refusals, and the token bucket's grants.</summary>
internal sealed class PlainLease(bool acquired) : MetadataFreeLease
{
    public static readonly RateLimitLease Granted = new PlainLease(true);
    public static readonly RateLimitLease Refused = new PlainLease(false);

    public override bool IsAcquired { get; } = acquired;
}
