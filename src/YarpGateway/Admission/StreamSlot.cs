using System.Threading.RateLimiting;

namespace YarpGateway.Admission;

/// <summary>
/// The global limit's slot of a request whose client asks for a stream (<c>Accept: text/event-stream</c>,
/// or a gRPC call), given back as soon as its response starts rather than when the response ends. The
/// global limit is a brake on work waiting for backends; a stream that has started waits for news, not
/// for a backend, often for hours. Held for their life, 4,096 idle server-sent-event subscribers (the
/// default limit) took every slot: every other request on the pod waited its 5 s in the queue and got
/// 503. Other requests keep their slot to the end, at no extra cost: only these register a callback.
/// Which limits free a started stream's slot is theirs to say (<see cref="ConcurrencyLimit.FreesStartedStreams"/>);
/// <see cref="RequestAdmission.Settle"/> hands out the lease to hold.
/// </summary>
internal sealed class StreamSlot : RateLimitLease
{
    private static readonly Func<object, Task> ReleaseAtStart = static state =>
    {
        ((StreamSlot)state).Dispose();
        return Task.CompletedTask;
    };

    private readonly RateLimitLease _inner;
    private int _released;

    private StreamSlot(RateLimitLease inner) => _inner = inner;

    public override bool IsAcquired => _inner.IsAcquired;

    public override IEnumerable<string> MetadataNames => _inner.MetadataNames;

    /// <summary>
    /// <paramref name="lease"/> itself for an ordinary request; for one that asks for a stream, a lease
    /// that is also given back when its response starts (and only once, whichever comes first).
    /// </summary>
    public static RateLimitLease ForRequest(HttpContext context, RateLimitLease lease)
    {
        if (!AsksForStream(context.Request))
        {
            return lease;
        }

        return UntilResponseStarts(context, lease);
    }

    /// <summary>A lease that is also given back when the response starts (and only once, whichever comes first), whatever the request.</summary>
    public static RateLimitLease UntilResponseStarts(HttpContext context, RateLimitLease lease)
    {
        var slot = new StreamSlot(lease);
        context.Response.OnStarting(ReleaseAtStart, slot);
        return slot;
    }

    /// <summary>A browser's <c>EventSource</c> sends <c>Accept: text/event-stream</c>; every gRPC call has an <c>application/grpc</c> content type.</summary>
    internal static bool AsksForStream(HttpRequest request)
        => request.Headers.Accept.ToString().Contains("text/event-stream", StringComparison.OrdinalIgnoreCase)
            || (request.ContentType is { } type && type.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase));

    public override bool TryGetMetadata(string metadataName, out object? metadata) => _inner.TryGetMetadata(metadataName, out metadata);

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _released, 1) == 0)
        {
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
