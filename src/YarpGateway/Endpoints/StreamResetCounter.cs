namespace YarpGateway.Endpoints;

/// <summary>
/// One HTTP/2 connection's client-reset streams in a fixed window (<see cref="Http2Options.StreamResetWindow"/>).
/// Created on the connection's first reset, so a connection that resets nothing pays nothing.
/// </summary>
internal sealed class StreamResetCounter
{
    private readonly Lock _lock = new();
    private long _windowStart;
    private int _count;

    /// <summary>Counts one reset; true (once) when the connection has now reset more than the limit within the window.</summary>
    public bool AddAndCheck(Http2Options options, TimeProvider timeProvider)
    {
        if (options.MaxStreamResets == 0)
        {
            return false;
        }

        var now = timeProvider.GetTimestamp();
        lock (_lock)
        {
            if (_count == 0 || timeProvider.GetElapsedTime(_windowStart, now) >= options.StreamResetWindow)
            {
                _windowStart = now;
                _count = 0;
            }

            return ++_count == options.MaxStreamResets + 1; // streams already running may end after it: one verdict is enough
        }
    }
}
