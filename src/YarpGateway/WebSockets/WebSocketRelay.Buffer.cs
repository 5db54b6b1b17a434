using System.Buffers;

namespace YarpGateway.WebSockets;

/// <summary>The bounded ring buffer towards the client: room, waiting for room, copying in.</summary>
internal sealed partial class WebSocketRelay
{
    private bool HasRoomFor(long length)
    {
        lock (_lock)
        {
            return _count == 0 || length <= _capacity - _count;
        }
    }

    /// <summary>Waits until <paramref name="needed"/> bytes fit; false if the connection is closing meanwhile.</summary>
    private async ValueTask<bool> WaitForRoomAsync(long needed, CancellationToken cancellationToken)
    {
        var started = 0L;
        while (true)
        {
            Task room;
            lock (_lock)
            {
                if (IsClosingLocked())
                {
                    return false;
                }

                if (_capacity - _count >= needed)
                {
                    return true;
                }

                _room ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                room = _room.Task;
            }

            if (_settings.Policy != SlowClientPolicy.Disconnect)
            {
                await room.WaitAsync(cancellationToken);
                continue;
            }

            if (started == 0)
            {
                started = _time.GetTimestamp();
            }

            var left = _settings.DisconnectAfter - _time.GetElapsedTime(started);
            try
            {
                await room.WaitAsync(left > TimeSpan.Zero ? left : TimeSpan.Zero, _time, cancellationToken);
            }
            catch (TimeoutException)
            {
                bool midFrame;
                lock (_lock)
                {
                    midFrame = _midFrame;
                }

                if (midFrame)
                {
                    // Part of a frame larger than the buffer is already on its way to the client: a
                    // close frame cannot go in until the frame ends, and the rest of it would have to
                    // be dropped, which leaves the client mid-frame. Abort instead.
                    _relays.Evicted(this, EvictionReason.BufferFull, 0, "client too slow in the middle of a frame larger than the buffer; aborted, as no close frame can be sent mid-frame");
                    Fail(new TimeoutException("The WebSocket client took no bytes in the middle of a frame for DisconnectAfter."));
                    return false;
                }

                RequestClose(CloseFrame.TryAgainLater, EvictionReason.BufferFull, "gateway: client too slow, try again later");
                return false;
            }
        }
    }

    /// <summary>Buffers payload bytes, waiting for room whenever the buffer is full (only frames larger than the cap wait here).</summary>
    private async ValueTask<bool> EnqueueAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            int n;
            bool start;
            lock (_lock)
            {
                if (IsClosingLocked())
                {
                    return false;
                }

                n = Math.Min(_capacity - _count, data.Length);
                start = n > 0 && Copy(data.Span[..n]);
            }

            if (start)
            {
                _ = DrainAsync();
            }

            if (n == 0)
            {
                if (!await WaitForRoomAsync(1, cancellationToken))
                {
                    return false;
                }

                continue;
            }

            data = data[n..];
        }

        return true;
    }

    /// <summary>Under the lock, with room: copies into the ring; true if the caller must start the drain.</summary>
    private bool Copy(ReadOnlySpan<byte> bytes)
    {
        _ring ??= ArrayPool<byte>.Shared.Rent(_capacity);
        var tail = (_head + _count) % _capacity;
        var first = Math.Min(bytes.Length, _capacity - tail);
        bytes[..first].CopyTo(_ring.AsSpan(tail));
        bytes[first..].CopyTo(_ring);
        _count += bytes.Length;
        _peak = Math.Max(_peak, _count);
        _counters.AddBuffered(bytes.Length);
        if (_draining)
        {
            return false;
        }

        _draining = true;
        return true;
    }

    /// <summary>Under the lock: the close goes after everything buffered so far; true if the caller must start the drain.</summary>
    private bool Install(Closing closing)
    {
        _close = closing;
        WakeRoomWaiter();
        if (_draining)
        {
            return false;
        }

        _draining = true;
        return true;
    }
}
