using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Connections.Features;

namespace YarpGateway.Admission;

/// <summary>
/// A connection's slot in the "still in its first request" cap: held from the connection's first
/// bytes until its first request is sent to a backend (<see cref="FirstRequestForwardedTransformProvider"/>; for a
/// place in the accept window, only while the gateway keeps up), its first response starts, the connection ends, or
/// <see cref="ConnectionAdmissionOptions.MaxFirstRequestTime"/> passes, whichever comes first. The
/// slot stands for the gateway's work of taking a new connection on; the backend's time to answer, a response that
/// streams for minutes (server-sent events, a download, a WebSocket after its 101) or a client that sends its
/// request slowly must not keep other new connections out. It also carries the connection's place in the accept
/// window, when it was let in by one (<see cref="AcceptWindowSlot"/>), and gives both back together.
/// </summary>
internal sealed class FirstRequestGate
{
    private static readonly object Key = new();
    private readonly RateLimitLease? _lease;
    private readonly AcceptWindowSlot? _window;
    private readonly Action? _onExpired;
    private ITimer? _timer;
    private int _released;

    /// <param name="lease">The first-request slot; null when only <paramref name="window"/> is held (no first-request cap).</param>
    public FirstRequestGate(RateLimitLease? lease, TimeSpan maxTime, TimeProvider timeProvider, Action? onExpired = null, AcceptWindowSlot? window = null)
    {
        _lease = lease;
        _window = window;
        _onExpired = onExpired;
        var timer = timeProvider.CreateTimer(static state => ((FirstRequestGate)state!).Expire(), this, maxTime, Timeout.InfiniteTimeSpan);
        Volatile.Write(ref _timer, timer);
        if (Volatile.Read(ref _released) == 1)
        {
            Interlocked.Exchange(ref _timer, null)?.Dispose(); // released before the timer was stored
        }
    }

    public void AttachTo(IDictionary<object, object?> connectionItems) => connectionItems[Key] = this;

    public void Release() => TryRelease();

    private void Expire()
    {
        if (TryRelease())
        {
            _onExpired?.Invoke();
        }
    }

    private bool TryRelease()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0)
        {
            return false;
        }

        // The gate lives as long as its connection (the connection's frame and the request's
        // OnCompleted hold it): a disposed timer kept here would too, about 120 bytes each.
        Interlocked.Exchange(ref _timer, null)?.Dispose();
        _lease?.Dispose();
        _window?.Release();
        return true;
    }

    /// <summary>
    /// On the connection's first request, arranges for the slot to be released when its response starts, and makes it the
    /// request's feature, for the proxy to release when it sends the request to a backend (<see cref="ReleaseOnForward"/>).
    /// Returns whether the request was its connection's first (one that found the gate).
    /// </summary>
    public static bool ReleaseWhenFirstResponseStarts(HttpContext context)
    {
        var items = context.Features.Get<IConnectionItemsFeature>()?.Items;
        if (items is null || !items.TryGetValue(Key, out var value) || value is not FirstRequestGate gate)
        {
            return false;
        }

        items.Remove(Key);
        context.Features.Set(gate);
        static Task ReleaseGate(object state)
        {
            ((FirstRequestGate)state).Release();
            return Task.CompletedTask;
        }

        context.Response.OnStarting(ReleaseGate, gate);
        context.Response.OnCompleted(ReleaseGate, gate); // also when the response never starts (Release runs once)
        return true;
    }

    /// <summary>
    /// The request is on its way to a backend: what is left is the backend's time to answer, which is not the gateway's
    /// work of taking the connection on. Released here, a slow backend does not hold the connection's place: with the
    /// window's 64 places per CPU held until the first response started, first requests to a backend answering in
    /// 100 ms could not pass 640 new connections a second per CPU, however idle the gateway. A place in the accept
    /// window is let go here only while the gateway keeps up (<see cref="AcceptWindow.KeepingUp"/>); otherwise when
    /// the response starts, as before.
    /// </summary>
    public static void ReleaseOnForward(HttpContext context)
    {
        if (context.Features.Get<FirstRequestGate>() is { } gate && (gate._window is null || gate._window.GivenBackOnForward))
        {
            gate.Release();
        }
    }
}
