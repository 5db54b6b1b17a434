using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Primitives;
using Microsoft.Net.Http.Headers;
using Yarp.ReverseProxy.Forwarder;

namespace YarpGateway.WebSockets;

/// <summary>
/// One proxied WebSocket, from the 101 on (YARP does the handshake; the relay copies both ways:
/// <see cref="RunAsync"/>). Backend bytes go into <see cref="WriteAsync"/>; they go through the frame parser into a bounded ring buffer (rented
/// only while it holds data, and sized to what it holds: an idle connection holds none) that this
/// relay drains to the client with a write timeout. Client bytes pass through
/// <see cref="ReadAsync"/> untouched and are only observed (whole messages counted).
/// <para>
/// When the buffer is full the route's <see cref="SlowClientPolicy"/> applies. The gateway's own
/// close frames (1001, 1002, 1008, 1013, and 1014 when the backend's connection ends without one)
/// are placed at a frame boundary of what has been buffered;
/// nothing the backend sends after that point reaches the client. If the client's close and the
/// backend's end do not follow within <see cref="WebSocketSettings.CloseTimeout"/>, both sides are aborted.
/// Once a close frame has passed in either direction the close handshake is under way: the gateway
/// sends no close of its own then (a second close frame is forbidden by RFC 6455 §5.5.1), it only
/// bounds the handshake's time.
/// </para>
/// </summary>
internal sealed partial class WebSocketRelay
{
    /// <summary>Writes to the client are at most this big, so the write timeout measures progress, not size.</summary>
    internal const int MaxWriteChunk = 16 * 1024;

    /// <summary>
    /// The ring's first size; it doubles, up to the cap, while more is buffered. A cap of at most two
    /// writes is rented whole: growing saves little there, and a ring outgrown while a write from it
    /// waits is held until that write returns.
    /// </summary>
    internal const int MinRingBytes = 4 * 1024;

    private static readonly FrameRules UpstreamRules = new(Masked: true, AllowReservedBits: true);

    private readonly WebSocketSettings _settings;
    private readonly IWebSocketRelayHost _relays;
    private readonly WebSocketCounters _counters;
    private readonly HttpContext _context;
    private readonly TimeProvider _time;

    // What Kestrel holds for the client beyond the ring while a write to it waits: a copy of that write (at most
    // MaxWriteChunk) and its queue towards the socket, which a write waits on only once it is full
    // (Gateway:Transport:MaxWriteBufferSize, 16 KiB by default: WebSocketSettings.SocketWriteQueueBytes). Counted
    // against the cap by DropMessages, but never more than half of it, so that a small cap still takes messages while
    // a write waits. This and the values below follow from the route's settings: computed when used, not kept by
    // every WebSocket for its life.
    private int HeldBelowWhileBlocked => (int)Math.Min(MaxWriteChunk + Math.Min(_settings.SocketWriteQueueBytes, int.MaxValue), Capacity / 2);

    private int Capacity => _settings.OutboundBufferBytes;

    private int ReadLowWater => Math.Clamp(Capacity / 4, 1, 4096); // the room the backend waits for before it is read again

    private int FirstRing => Capacity <= 2 * MaxWriteChunk ? Capacity : MinRingBytes; // the ring's first size: MinRingBytes, or the whole cap when it is small

    // DropMessages strips Sec-WebSocket-Extensions from the handshake, so no extension may set RSV bits there.
    private FrameRules DownstreamRules => new(Masked: false, AllowReservedBits: _settings.Policy != SlowClientPolicy.DropMessages);

    // State shared by the copies, the drain and the sweep is guarded by the relay's own monitor (lock (this)): a Lock
    // object of its own would be 48 bytes more for each WebSocket's life, and the relay is never handed to code that
    // could lock it (internal, a request feature of the gateway's own).

    private Stream? _client;
    private IHeaderDictionary? _clientHeaders; // Kestrel's, while a copy stands in for them (StandInForClientRequestHead)

    // The ring buffer and the drain (under the relay's own monitor).
    private byte[]? _ring;
    private byte[]? _writing; // the ring the drain's write in progress reads from
    private byte[]? _retired; // a ring that grew while being written from, given back when the write returns
    private int _head;
    private int _count;
    private int _peak;
    private bool _draining;
    private bool _midFrame;
    private long _enqueued; // bytes ever copied in
    private long _taken; // of those, bytes the drain has handed (or is handing) to the client
    private long _frameStart; // where the frame being buffered began, in the same count
    private TaskCompletionSource? _room;
    private TaskCompletionSource? _idle;
    private CancellationTokenSource? _writeTimeout;
    private volatile bool _writeBlocked;
    private volatile bool _writeParked;

    // Closing (under the relay's own monitor).
    private Closing? _pendingClose;
    private Closing? _close;
    private bool _closeSent;
    private bool _backendClosed; // the backend's close frame is buffered or sent to the client
    private volatile bool _clientClosed; // the client's close frame passed to the backend
    private volatile bool _clientEnded; // the client's connection ended (or failed) under a read
    private Exception? _failure;
    private ITimer? _closeTimer;

    // Backend-to-client parsing: only the thread in WriteAsync touches these.
    private FrameParser _down;
    private bool _dropFrame;
    private bool _droppingMessage;
    private long _droppedMessages;
    private long _droppedBytes;

    // Client-to-backend observation: only the thread in ReadAsync touches these.
    private FrameParser _up;
    private bool _upBroken;

    public WebSocketRelay(WebSocketSettings settings, string routeId, HttpContext context, IWebSocketRelayHost relays, WebSocketCounters counters, TimeProvider time)
    {
        _settings = settings;
        RouteId = routeId;
        _context = context;
        _relays = relays;
        _counters = counters;
        _time = time;
        _activityTimeout = ActivityTimeoutOf(context);
    }

    public string RouteId { get; }

    /// <summary>The handshake's request id, as the access log writes it (<see cref="Telemetry.RequestId"/>), for a line about this WebSocket.</summary>
    public string RequestId => Telemetry.RequestId.Of(_context, _relays.RequestIdHeader);

    /// <summary>The route's settings this relay runs with.</summary>
    public WebSocketSettings Settings => _settings;

    /// <summary>
    /// Called once the client has its answer (the 101, or the 200 to an HTTP/2 extended CONNECT) and the backend stream is
    /// opened: every check and transform that reads the client's request headers has run, and nothing reads them again, but
    /// Kestrel keeps them for the connection's life. A browser's handshake brings a kilobyte or more (cookies, user agent,
    /// languages), all of it held by every idle WebSocket. (The response's headers are read-only once sent.) Each header is
    /// removed by name: Kestrel's <c>Clear()</c> only marks its known headers absent and keeps their values, to reuse them
    /// for the connection's next request, which an upgraded connection never has. So are routing's values (the route's
    /// catch-all text, in a dictionary of its own: 106 bytes per WebSocket, `bench/websockets-heap.sh`). The request's id
    /// (<see cref="IWebSocketRelayHost.RequestIdHeader"/>) and <c>traceparent</c> stay: the access line, written when the
    /// WebSocket ends, names both, and the eviction line the id (they said <c>trace=- id=-</c> before 2026-12-07); strings
    /// the headers held already, where the client sent them.
    /// </summary>
    public void ReleaseClientRequestHead()
    {
        var request = _context.Request;
        request.RouteValues = null!; // nothing reads them after routing; Kestrel's feature makes an empty one if asked again

        var headers = request.Headers;
        if (_clientHeaders is { } kestrels && _context.Features.Get<IHttpRequestFeature>() is { } feature)
        {
            feature.Headers = kestrels; // the copy that stood in for the handshake goes
            headers = kestrels;
            _clientHeaders = null;
        }

        if (headers.Count == 0)
        {
            return;
        }

        var kept = _relays.RequestIdHeader;
        foreach (var (name, _) in CopyOut(headers))
        {
            if (!name.Equals(kept, StringComparison.OrdinalIgnoreCase) && !name.Equals(HeaderNames.TraceParent, StringComparison.OrdinalIgnoreCase))
            {
                headers.Remove(name);
            }
        }
    }

    /// <summary>
    /// Puts a copy of the client's request headers in front of Kestrel's until <see cref="ReleaseClientRequestHead"/>: YARP
    /// enumerates them to build the backend's request, and Kestrel keeps the enumerator it boxes for that, with its cache
    /// (128 bytes), for the request's next use, which for a WebSocket is its whole life. The copy, enumerated instead, goes
    /// with the handshake.
    /// </summary>
    public void StandInForClientRequestHead()
    {
        if (_context.Features.Get<IHttpRequestFeature>() is not { } feature)
        {
            return;
        }

        var headers = feature.Headers;
        var pairs = CopyOut(headers);
        var copy = new HeaderDictionary(pairs.Length);
        foreach (var (name, value) in pairs)
        {
            copy[name] = value;
        }

        _clientHeaders = headers;
        feature.Headers = copy;
    }

    // Copied out, not enumerated: Kestrel keeps the enumerator it boxes for an enumeration for the request's next use.
    private static KeyValuePair<string, StringValues>[] CopyOut(IHeaderDictionary headers)
    {
        var pairs = new KeyValuePair<string, StringValues>[headers.Count];
        headers.CopyTo(pairs, 0);
        return pairs;
    }

    /// <summary>Bytes buffered towards the client now.</summary>
    public int BufferedBytes
    {
        get
        {
            lock (this)
            {
                return _count;
            }
        }
    }

    /// <summary>The most this connection ever had buffered (never above the cap).</summary>
    public int PeakBufferedBytes
    {
        get
        {
            lock (this)
            {
                return _peak;
            }
        }
    }

    /// <summary>The ring rented for the buffer now: sized to what it holds, at most the cap rounded up to the pool's size.</summary>
    public int RingBytes
    {
        get
        {
            lock (this)
            {
                return _ring?.Length ?? 0;
            }
        }
    }

    /// <summary>
    /// All the buffer holds now: the ring, and a ring it outgrew while a write from that one waits (at
    /// most half the cap), given back when the write returns. So at most one and a half times the cap
    /// (the pool hands out powers of two: a cap that is not one is rounded up first).
    /// </summary>
    public int HeldBytes
    {
        get
        {
            lock (this)
            {
                return (_ring?.Length ?? 0) + (_retired?.Length ?? 0);
            }
        }
    }

    public long DroppedMessages => Interlocked.Read(ref _droppedMessages);

    /// <summary>
    /// True while bytes from the backend wait for room in a write to this relay, keeping the buffer they
    /// were read into (the copy's, at most 64 KiB) beside this one. The backend gate keeps it false: the backend is
    /// not read until there is room for what is read.
    /// </summary>
    public bool WriteParked => _writeParked;

    /// <summary>True while a write to the client waits: the client (or the network) is not taking bytes now.</summary>
    public bool WriteBlocked => _writeBlocked;

    /// <summary>
    /// Called once the client side is upgraded: from here the relay carries the connection. YARP gets a
    /// stream that has ended: the relay copies (<see cref="RunAsync"/>).
    /// </summary>
    public Stream Attach(Stream client)
    {
        _client = client;
        _relays.Register(this);
        return Stream.Null;
    }

    /// <summary>Backend to client: parse, apply the policy, buffer, drain.</summary>
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        _counters.AddDownstream(data.Length);
        while (!data.IsEmpty)
        {
            if (IsClosing())
            {
                return; // after the gateway's close frame nothing more goes to the client
            }

            if (!_down.InPayload)
            {
                var taken = _down.ReadHeader(data.Span, DownstreamRules, out var status, out var error);
                data = data[taken..];
                if (status == HeaderStatus.NeedMore)
                {
                    return; // the parser keeps the partial header
                }

                if (status == HeaderStatus.Invalid)
                {
                    RequestClose(CloseFrame.ProtocolError, EvictionReason.ProtocolError, $"gateway: malformed frame from the backend ({error})");
                    return;
                }

                if (!await StartFrameAsync(_down.Current, cancellationToken))
                {
                    return;
                }

                if (_down.PayloadRemaining == 0)
                {
                    _down.AdvancePayload(0);
                    EndFrame(_down.Current);
                }

                continue;
            }

            var n = (int)Math.Min(_down.PayloadRemaining, data.Length);
            if (!_dropFrame && !await EnqueueAsync(data[..n], cancellationToken))
            {
                return;
            }

            data = data[n..];
            if (_down.AdvancePayload(n))
            {
                EndFrame(_down.Current);
            }
        }
    }

    /// <summary>Client to backend: passed through as read (zero-byte reads included), observed for message counts.</summary>
    public ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
        => buffer.IsEmpty
            ? _client!.ReadAsync(buffer, cancellationToken) // a zero-byte read has nothing to observe: an idle WebSocket waits in Kestrel's read, not in ours
            : ReadAndObserveAsync(buffer, cancellationToken);

    private async ValueTask<int> ReadAndObserveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int read;
        try
        {
            read = await _client!.ReadAsync(buffer, cancellationToken);
        }
        catch (IOException)
        {
            _clientEnded = true; // reset or lost: the client's end, not the backend's
            throw;
        }

        if (read == 0)
        {
            _clientEnded = true;
        }
        else
        {
            _counters.AddUpstream(read);
            if (!_upBroken)
            {
                _upBroken = !_up.Observe(buffer.Span[..read], UpstreamRules, out var messages, out var close); // a broken client stream is the backend's to judge
                if (messages > 0)
                {
                    _counters.AddUpstreamMessages(messages);
                }

                if (close)
                {
                    _clientClosed = true;
                }
            }
        }

        return read;
    }

    /// <summary>
    /// Closes the client with <paramref name="code"/> at the next frame boundary of what is buffered
    /// (the drain's 1001, evictions). If the client's close and the backend's end do not follow
    /// within <see cref="WebSocketSettings.CloseTimeout"/> of this call (a client that does not read
    /// never even gets the frame), both sides are aborted.
    /// </summary>
    public void RequestClose(ushort code, EvictionReason reason, string text)
    {
        var start = false;
        lock (this)
        {
            if (_close is not null || _pendingClose is not null || _failure is not null || _closeTimer is not null)
            {
                return;
            }

            _closeTimer = _time.CreateTimer(static state => ((WebSocketRelay)state!).CloseTimedOut(), this, _settings.CloseTimeout, Timeout.InfiniteTimeSpan);
            if (_backendClosed || _clientClosed)
            {
                // A close frame already passed: the handshake is under way, and ours would be a second one.
                _relays.Evicted(this, reason, 0, "close handshake already under way; " + text);
                return;
            }

            var closing = new Closing(CloseFrame.Build(code, text), reason);
            if (_midFrame && !TryDropUnsentFrame())
            {
                _pendingClose = closing; // part of the frame is on its way: installed when the frame ends
            }
            else
            {
                start = Install(closing);
            }
        }

        _relays.Evicted(this, reason, code, text);
        if (start)
        {
            _ = DrainAsync();
        }
    }

    /// <summary>
    /// After the copies have ended (or YARP's handshake failed): lets the buffer drain to the client
    /// (bounded by the write timeout), then releases everything.
    /// </summary>
    public async Task CompleteAsync()
    {
        try
        {
            // The backend's connection ended and no close frame has passed either way (a backend that
            // crashed, was killed or reset): the client gets 1014 after what was buffered, not a dropped
            // connection it cannot tell from a network failure.
            if (BackendLost())
            {
                RequestClose(CloseFrame.BadGateway, EvictionReason.BackendLost, "gateway: the backend's connection ended without a close frame");
            }

            Task? idle = null;
            lock (this)
            {
                if (_draining)
                {
                    _idle ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    idle = _idle.Task;
                }
            }

            if (idle is not null)
            {
                await idle;
            }
        }
        finally
        {
            lock (this)
            {
                _failure ??= new ObjectDisposedException(nameof(WebSocketRelay));
                ReleaseRing();
                WakeRoomWaiter();
                _closeTimer?.Dispose();
                if (!_draining)
                {
                    _writeTimeout?.Dispose(); // else the drain disposes it when its write returns
                    _writeTimeout = null;
                }
            }

            _backend?.Dispose(); // YARP's handshake failed after the backend's side was handed over, before the copy

            if (_client is { } client)
            {
                _relays.Unregister(this);
                await client.DisposeAsync();
            }
        }
    }

    // The backend's side ended: cleanly (no error reported) or with an error on the backend's
    // connection. An error on the client's side, a cancellation or the activity timeout is not that.
    // A close of the gateway's own already in place is RequestClose's to see.
    private bool BackendLost()
    {
        if (_context.Features.Get<IForwarderErrorFeature>()?.Error is not (null or ForwarderError.UpgradeRequestDestination or ForwarderError.UpgradeResponseDestination))
        {
            return false;
        }

        lock (this)
        {
            return _client is not null && !_backendClosed && !_clientClosed && !_clientEnded && !_context.RequestAborted.IsCancellationRequested;
        }
    }

    private bool IsClosing()
    {
        lock (this)
        {
            return IsClosingLocked();
        }
    }

    /// <summary>Under the lock: true once the gateway's close is in place; throws once the client side failed.</summary>
    private bool IsClosingLocked()
    {
        if (_failure is not null)
        {
            throw new IOException("The client side of the WebSocket is gone.", _failure);
        }

        return _close is not null;
    }

    private async ValueTask<bool> StartFrameAsync(FrameHeader header, CancellationToken cancellationToken)
    {
        if (header.StartsMessage && _settings.Policy == SlowClientPolicy.DropMessages)
        {
            _droppingMessage = !HasRoomFor(header.TotalLength);
            if (_droppingMessage)
            {
                Interlocked.Increment(ref _droppedMessages);
            }
        }

        _dropFrame = _droppingMessage && !header.IsControl;
        if (_dropFrame)
        {
            // Counted whole here; the drop limit is checked when the message ends, by which time these bytes have all come.
            _droppedBytes += header.TotalLength;
            _relays.Dropped(this, header.StartsMessage ? 1 : 0, header.TotalLength);
            return true;
        }

        // Only the header needs room now: the payload goes in as it comes. A close requested before the
        // frame ends takes back whatever of it the client has not begun to receive (TryDropUnsentFrame).
        if (!await WaitForRoomAsync(_down.HeaderBytes.Length, cancellationToken, parksWrite: true))
        {
            return false;
        }

        bool start;
        lock (this)
        {
            if (_close is not null || _failure is not null)
            {
                return false;
            }

            _frameStart = _enqueued;
            start = Copy(_down.HeaderBytes);
            _midFrame = header.PayloadLength > 0;
            _backendClosed |= header.Opcode == Opcode.Close;
        }

        if (start)
        {
            _ = DrainAsync();
        }

        return true;
    }

    private void EndFrame(FrameHeader header)
    {
        var start = false;
        lock (this)
        {
            _midFrame = false;
            if (_pendingClose is { } pending && _close is null)
            {
                _pendingClose = null;
                start = Install(pending);
            }
        }

        if (start)
        {
            _ = DrainAsync();
        }

        if (!header.EndsMessage)
        {
            return;
        }

        if (!_dropFrame)
        {
            _counters.AddDownstreamMessages(1);
            return;
        }

        _droppingMessage = false;
        if ((_settings.MaxDroppedMessages > 0 && _droppedMessages >= _settings.MaxDroppedMessages)
            || (_settings.MaxDroppedBytes > 0 && _droppedBytes >= _settings.MaxDroppedBytes))
        {
            RequestClose(CloseFrame.PolicyViolation, EvictionReason.DropLimit, $"gateway: client too slow, {_droppedMessages} messages dropped");
        }
    }

    private sealed record Closing(byte[] Frame, EvictionReason Reason);

    private sealed class WriteTimeoutException(Exception inner) : TimeoutException("A write to the WebSocket client made no progress in time.", inner);
}
