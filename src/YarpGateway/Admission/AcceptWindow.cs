namespace YarpGateway.Admission;

/// <summary>
/// The accept window (<see cref="ConnectionAdmissionOptions.AcceptWindow"/>): how many new connections may be in
/// their first request at once, having come in past an empty bucket. Its size follows the delay the adaptive rate
/// measures (<see cref="Update"/>, every 100 ms): cut to 70 % while the delay is over the target, grown by a quarter
/// while it is under half the target and an accept found the window full, between an eighth of
/// <see cref="MaxSize"/> and <see cref="MaxSize"/>. A full window holds back as many first requests as keep the
/// gateway's own delay near its target, whatever one costs on this machine. Those who wait for a place are the
/// listeners' accept loops, one per bound address.
/// </summary>
internal sealed class AcceptWindow
{
    public const double DecreaseFactor = 0.7;

    private readonly Lock _lock = new();
    private int _size;
    private int _inUse;
    private bool _starved;
    private int _keepingUp = 1;
    private TaskCompletionSource? _room;

    public AcceptWindow(int maxSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSize, 1);
        MaxSize = maxSize;
        MinSize = Math.Max(1, maxSize / 8);
        _size = maxSize;
    }

    public int MaxSize { get; }

    public int MinSize { get; }

    /// <summary>Places now: at most this many in use at once.</summary>
    public int Size => Volatile.Read(ref _size);

    /// <summary>
    /// Whether the gateway kept up over the last period (its measured delay under half the target; so at start): while it
    /// does, a new connection gives its place back when its first request goes to a backend, not when the answer starts
    /// (<see cref="FirstRequestGate.ReleaseOnForward"/>), so a backend slow to answer does not hold new connections to
    /// the window's size per answer's time. While it does not, the backend's time counts: the answers coming back are the
    /// gateway's work too, and a window given back at each forward no longer held a storm (measured: the open connections'
    /// median request waited 177 ms instead of 27 ms, the window at its floor).
    /// </summary>
    public bool KeepingUp => Volatile.Read(ref _keepingUp) == 1;

    /// <summary>Places taken and not given back (those the listeners hold for their next connection included).</summary>
    public int InUse => Volatile.Read(ref _inUse);

    /// <summary>Takes a place if one is free; if none is, notes the demand (the size may then grow).</summary>
    public bool TryTake()
    {
        lock (_lock)
        {
            if (_inUse < _size)
            {
                _inUse++;
                return true;
            }

            _starved = true;
            return false;
        }
    }

    /// <summary>Completes once a place may be free (take it with <see cref="TryTake"/>: another may have been first).</summary>
    public Task WaitForRoomAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_inUse < _size)
            {
                return Task.CompletedTask;
            }

            _room ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _room.Task.WaitAsync(cancellationToken);
        }
    }

    public void Give()
    {
        TaskCompletionSource? room;
        lock (_lock)
        {
            _inUse--;
            room = TakeRoomIfFree();
        }

        room?.TrySetResult();
    }

    /// <summary>Sets the size from the delay measured over the last period. Returns the size.</summary>
    public int Update(TimeSpan delay, TimeSpan target)
    {
        TaskCompletionSource? room;
        int size;
        lock (_lock)
        {
            size = _size;
            if (delay > target)
            {
                size = Math.Max(MinSize, (int)(size * DecreaseFactor));
            }
            else if (_starved && delay * 2 < target)
            {
                size = Math.Min(MaxSize, size + Math.Max(1, size / 4));
            }

            _starved = false;
            Volatile.Write(ref _size, size);
            Volatile.Write(ref _keepingUp, delay * 2 < target ? 1 : 0);
            room = TakeRoomIfFree();
        }

        room?.TrySetResult();
        return size;
    }

    private TaskCompletionSource? TakeRoomIfFree()
    {
        if (_inUse >= _size || _room is null)
        {
            return null;
        }

        var room = _room;
        _room = null;
        return room;
    }
}
