using System.Buffers;

namespace YarpGateway.WebSockets;

/// <summary>The writer that drains the ring buffer to the client, its write timeout, and how the relay fails and gives its buffer back.</summary>
internal sealed partial class WebSocketRelay
{
    private async Task DrainAsync()
    {
        try
        {
            while (true)
            {
                byte[] ring;
                int start;
                int length;
                byte[]? closeFrame = null;
                lock (this)
                {
                    if (_failure is not null || _count == 0)
                    {
                        if (_failure is null && _close is { } close && !_closeSent)
                        {
                            _closeSent = true;
                            closeFrame = close.Frame;
                        }
                        else
                        {
                            StopDraining();
                            return;
                        }
                    }

                    ring = _ring ?? [];
                    start = _head;
                    length = closeFrame is null ? Math.Min(Math.Min(_count, ring.Length - _head), MaxWriteChunk) : 0;
                    _taken += length;
                    _writing = closeFrame is null ? ring : null;
                }

                if (closeFrame is not null)
                {
                    await WriteToClientAsync(closeFrame);
                    continue;
                }

                try
                {
                    await WriteToClientAsync(ring.AsMemory(start, length));
                    Touch(); // a client taking what is buffered is activity, though the backend is held back meanwhile
                }
                finally
                {
                    lock (this)
                    {
                        _writing = null;
                        ReturnRetired();
                    }
                }

                lock (this)
                {
                    if (_failure is not null)
                    {
                        StopDraining();
                        return;
                    }

                    // The ring may have grown during the write: what was written moved to its front.
                    _head = (_head + length) % _ring!.Length;
                    _count -= length;
                    _counters.AddBuffered(-length);
                    WakeRoomWaiter();
                }
            }
        }
        catch (Exception ex)
        {
            Fail(ex, fromDrain: true);
        }
    }

    private async ValueTask WriteToClientAsync(ReadOnlyMemory<byte> bytes)
    {
        var timeout = _writeTimeout ??= new CancellationTokenSource(Timeout.InfiniteTimeSpan, _time);
        timeout.CancelAfter(_settings.WriteTimeout);
        try
        {
            var write = _client!.WriteAsync(bytes, timeout.Token);
            if (!write.IsCompletedSuccessfully)
            {
                _writeBlocked = true;
                await write;
            }
        }
        catch (OperationCanceledException ex) when (timeout.IsCancellationRequested)
        {
            throw new WriteTimeoutException(ex);
        }
        finally
        {
            _writeBlocked = false;
            if (!timeout.TryReset())
            {
                timeout.Dispose();
                _writeTimeout = null;
            }
        }
    }

    /// <summary>
    /// The write timeout's source (and its timer, 144 bytes in all) is kept while writes come, not for a WebSocket's life:
    /// a WebSocket that has been sent one message and then stays idle lets it go at the sweep once it has had no bytes
    /// either way for this long. The next write makes a new one.
    /// </summary>
    internal static readonly TimeSpan WriteTimeoutKeptFor = TimeSpan.FromSeconds(1);

    /// <summary>Whether the relay holds a write timeout's source now (the sweep lets an idle one go).</summary>
    internal bool HoldsWriteTimeout
    {
        get
        {
            lock (this)
            {
                return _writeTimeout is not null;
            }
        }
    }

    /// <summary>Called by the sweep on an idle relay: gives the write timeout's source back unless a drain is writing with it.</summary>
    private void ReleaseWriteTimeout()
    {
        CancellationTokenSource? timeout;
        lock (this)
        {
            if (_draining || _writeTimeout is null)
            {
                return;
            }

            timeout = _writeTimeout;
            _writeTimeout = null;
        }

        timeout.Dispose();
    }

    private void CloseTimedOut()
    {
        lock (this)
        {
            if (_failure is not null)
            {
                return;
            }
        }

        _relays.Evicted(this, EvictionReason.CloseTimeout, 0, "no close from the client or no end from the backend in time");
        Fail(new TimeoutException("The WebSocket close handshake did not finish in time."));
    }

    private void Fail(Exception ex, bool fromDrain = false)
    {
        lock (this)
        {
            var first = _failure is null;
            _failure ??= ex;
            if (fromDrain)
            {
                StopDraining();
            }
            else
            {
                ReleaseRing(); // the drain, if one is running, gives the buffer back when its write returns
                WakeRoomWaiter();
            }

            if (!first)
            {
                return;
            }
        }

        if (ex is WriteTimeoutException)
        {
            _relays.Evicted(this, EvictionReason.WriteTimeout, 0, "a write to the client made no progress");
        }

        _context.Abort(); // the client's connection
        StopCopying(); // and both copies, the backend's connection with them
    }

    /// <summary>Under the lock, on the drain's own path: the drain ends; a failed or emptied relay gives its buffer back.</summary>
    private void StopDraining()
    {
        _draining = false;
        ReleaseRing();
        if (_failure is not null)
        {
            _writeTimeout?.Dispose();
            _writeTimeout = null;
        }

        WakeRoomWaiter();
        _idle?.TrySetResult();
        _idle = null;
    }

    /// <summary>Under the lock: returns the ring when nothing is being written from it and it is empty or no longer wanted.</summary>
    private void ReleaseRing()
    {
        if (_draining || (_count > 0 && _failure is null))
        {
            return;
        }

        if (_count > 0)
        {
            _counters.AddBuffered(-_count);
            _count = 0;
        }

        if (_ring is { } ring)
        {
            _ring = null;
            _head = 0;
            ArrayPool<byte>.Shared.Return(ring);
        }

        ReturnRetired();
    }

    /// <summary>Under the lock: gives back a ring that grew while the drain was writing from it.</summary>
    private void ReturnRetired()
    {
        if (_retired is { } retired)
        {
            _retired = null;
            ArrayPool<byte>.Shared.Return(retired);
        }
    }

    /// <summary>Under the lock.</summary>
    private void WakeRoomWaiter()
    {
        _room?.TrySetResult();
        _room = null;
    }
}
