using System.Buffers;

namespace YarpGateway.WebSockets;

/// <summary>The bounded ring buffer towards the client: room, waiting for room, copying in.</summary>
internal sealed partial class WebSocketRelay
{
    /// <summary>
    /// Whether a message of <paramref name="length"/> bytes fits (DropMessages' test; a message larger than the whole buffer
    /// passes while the buffer is empty). While a write to the client waits, Kestrel holds that write's bytes again and its
    /// own queue towards the socket, and they count against the cap (32 KiB with the default 16 KiB queue, at most half of it): the cap then bounds what
    /// the gateway holds for the client, not only the ring. Without that, a client that stopped reading held a full ring and
    /// Kestrel's queue besides (`bench/ws-slow-readers.sh`: 106 and 110 KiB per never-reader, now 86 and 91).
    /// </summary>
    private bool HasRoomFor(long length)
    {
        lock (this)
        {
            return _count == 0 || length <= Capacity - _count - (_writeBlocked ? HeldBelowWhileBlocked : 0);
        }
    }

    /// <summary>
    /// Waits until <paramref name="needed"/> bytes fit; false if the connection is closing meanwhile.
    /// <paramref name="parksWrite"/>: the caller is a write whose data (the copy's read buffer) waits with
    /// it, which <see cref="WriteParked"/> shows; with the backend gate in place that never happens.
    /// <paramref name="clientTaking"/>: there is room only while no write to the client waits.
    /// </summary>
    private async ValueTask<bool> WaitForRoomAsync(long needed, CancellationToken cancellationToken, bool parksWrite = false, bool clientTaking = false)
    {
        var started = 0L;
        while (true)
        {
            Task room;
            lock (this)
            {
                if (IsClosingLocked())
                {
                    return false;
                }

                if (Capacity - _count >= needed && !(clientTaking && _writeBlocked))
                {
                    return true;
                }

                _room ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                room = _room.Task;
            }

            _writeParked = parksWrite;
            if (_settings.Policy != SlowClientPolicy.Disconnect)
            {
                try
                {
                    await room.WaitAsync(cancellationToken);
                }
                finally
                {
                    _writeParked = false;
                }

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
                bool partlySent;
                lock (this)
                {
                    partlySent = _midFrame && _taken > _frameStart;
                }

                if (partlySent)
                {
                    // Part of the frame being buffered is already on its way to the client: a close
                    // frame cannot go in until the frame ends, and the rest of it would have to be
                    // dropped, which leaves the client mid-frame. Abort instead.
                    _relays.Evicted(this, EvictionReason.BufferFull, 0, "client too slow in the middle of a frame it has begun to receive; aborted, as no close frame can be sent mid-frame");
                    Fail(new TimeoutException("The WebSocket client took no bytes in the middle of a frame for DisconnectAfter."));
                    return false;
                }

                RequestClose(CloseFrame.TryAgainLater, EvictionReason.BufferFull, "gateway: client too slow, try again later");
                return false;
            }
            finally
            {
                _writeParked = false;
            }
        }
    }

    /// <summary>Buffers payload bytes, waiting for room whenever the buffer is full (behind the backend gate it never is: the read was sized to the room).</summary>
    private async ValueTask<bool> EnqueueAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            int n;
            bool start;
            lock (this)
            {
                if (IsClosingLocked())
                {
                    return false;
                }

                n = Math.Min(Capacity - _count, data.Length);
                start = n > 0 && Copy(data.Span[..n]);
            }

            if (start)
            {
                _ = DrainAsync();
            }

            if (n == 0)
            {
                if (!await WaitForRoomAsync(1, cancellationToken, parksWrite: true))
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
        var ring = RingFor(_count + bytes.Length);
        var tail = (_head + _count) % ring.Length;
        var first = Math.Min(bytes.Length, ring.Length - tail);
        bytes[..first].CopyTo(ring.AsSpan(tail));
        bytes[first..].CopyTo(ring);
        _count += bytes.Length;
        _enqueued += bytes.Length;
        _peak = Math.Max(_peak, _count);
        _counters.AddBuffered(bytes.Length);
        if (_draining)
        {
            return false;
        }

        _draining = true;
        return true;
    }

    /// <summary>
    /// Under the lock: a ring that holds <paramref name="needed"/> bytes (at most the cap). The ring is
    /// sized to what it holds, not to the cap: it starts at <see cref="MinRingBytes"/> (a small cap is
    /// rented whole) and doubles when more is buffered, so a connection whose client is stuck behind
    /// one message pins that message's ring, not the whole cap. Growing moves what is buffered to the
    /// front of the new ring; an old ring the drain is writing from goes back to the pool once that
    /// write returns.
    /// </summary>
    private byte[] RingFor(int needed)
    {
        if (_ring is { } ring && ring.Length >= needed)
        {
            return ring;
        }

        var size = Math.Min(Capacity, Math.Max(needed, Math.Max(FirstRing, (_ring?.Length ?? 0) * 2)));
        var grown = ArrayPool<byte>.Shared.Rent(size);
        if (_ring is { } old)
        {
            var first = Math.Min(_count, old.Length - _head);
            old.AsSpan(_head, first).CopyTo(grown);
            old.AsSpan(0, _count - first).CopyTo(grown.AsSpan(first));
            if (ReferenceEquals(old, _writing))
            {
                _retired = old;
            }
            else
            {
                ArrayPool<byte>.Shared.Return(old);
            }
        }

        _head = 0;
        _ring = grown;
        return grown;
    }

    /// <summary>
    /// Under the lock, while a frame is being buffered: if the client has not begun to receive it, takes
    /// it back out of the buffer, so that a close can go in now at the frame boundary before it. The
    /// rest of the frame, still to come from the backend, is discarded with everything after the close.
    /// </summary>
    private bool TryDropUnsentFrame()
    {
        if (_taken > _frameStart)
        {
            return false;
        }

        var unsent = (int)(_enqueued - _frameStart);
        _count -= unsent;
        _enqueued = _frameStart;
        _counters.AddBuffered(-unsent);
        _midFrame = false;
        return true;
    }

    /// <summary>
    /// How many bytes the backend may be read now (the backend gate, in the downstream copy): once the buffer has
    /// room, at most that room, so that everything read goes in without waiting and no read buffer above
    /// this one is parked in a blocked write. While the buffer is full, or a write to the client waits
    /// (Kestrel's queue towards the socket is full, so the client is not taking what it already has),
    /// the backend is not read: that is the backpressure, and a client that stops reading pins
    /// Kestrel's queue and little of the buffer. The Disconnect policy's clock runs here.
    /// DropMessages is not held back: it keeps reading and drops what does not fit. Unlimited once
    /// the relay is closing or has failed (what comes then is discarded, or fails the write that follows).
    /// </summary>
    public async ValueTask<int> BackendReadLimitAsync(CancellationToken cancellationToken)
    {
        if (_settings.Policy == SlowClientPolicy.DropMessages)
        {
            return int.MaxValue;
        }

        try
        {
            if (!await WaitForRoomAsync(ReadLowWater, cancellationToken, clientTaking: true))
            {
                return int.MaxValue;
            }
        }
        catch (IOException)
        {
            return int.MaxValue; // the client side failed; the write of whatever comes next says so to the copy
        }

        lock (this)
        {
            return _close is null && _failure is null ? Math.Min(Capacity - _count, MaxWriteChunk) : int.MaxValue;
        }
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
