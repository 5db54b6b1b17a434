using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Connections.Features;

namespace YarpGateway.Admission;

/// <summary>
/// A connection's slot in the "still in its first request" cap: held from admission until the first
/// response completes (or the connection ends without one), whichever comes first. For an upgrade
/// (WebSocket) the slot is released when the response starts: the 101 ends the first request, and an
/// upgraded connection may stay open for hours.
/// </summary>
internal sealed class FirstRequestGate(RateLimitLease lease)
{
    private static readonly object Key = new();
    private int _released;

    public void AttachTo(IDictionary<object, object?> connectionItems) => connectionItems[Key] = this;

    public void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            lease.Dispose();
        }
    }

    /// <summary>On the connection's first request, arranges for the slot to be released when its response completes.</summary>
    public static void ReleaseAfterFirstResponse(HttpContext context)
    {
        var items = context.Features.Get<IConnectionItemsFeature>()?.Items;
        if (items is null || !items.TryGetValue(Key, out var value) || value is not FirstRequestGate gate)
        {
            return;
        }

        items.Remove(Key);
        static Task ReleaseGate(object state)
        {
            ((FirstRequestGate)state).Release();
            return Task.CompletedTask;
        }

        if (RequestAdmission.IsUpgrade(context))
        {
            context.Response.OnStarting(ReleaseGate, gate);
        }

        context.Response.OnCompleted(ReleaseGate, gate); // also when the response never starts (Release runs once)
    }
}
