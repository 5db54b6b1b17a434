using System.Buffers;
using Yarp.ReverseProxy.Forwarder;

namespace YarpGateway.WebSockets;

/// <summary>
/// The two copies of an upgraded WebSocket, client to backend and backend to client. YARP does the
/// handshake (routing, transforms, load balancing, the 101 or the 200 to an extended CONNECT), then
/// would copy both ways itself, in frames kept for the connection's life: its forwarding and copy
/// state machines, their task combinator and its activity timer, and beneath them the frames of every
/// proxy middleware waiting for it to return (the retries' among them), about 2 KB per WebSocket
/// (`bench/websockets-heap.sh`). The relay hands YARP both sides as streams that have ended, so that
/// YARP's copies end at once and the request's forwarding returns as a success, and copies here, in
/// two frames of its own (one of them the request's, <see cref="RunAsync"/>), with buffers rented only
/// while bytes move.
/// <para>
/// The copies end as YARP's do: the client's side ending cleanly waits for the backend's; the
/// backend's side ending (cleanly or not) stops the client's reads; a failure on either side stops
/// the other; the client's connection lost stops both. The first failure is reported as YARP would have reported it
/// (<see cref="IForwarderErrorFeature"/>, with YARP's <c>Upgrade...</c> errors), so that the proxy
/// error counts and logs, the backend-lost close (1014) and the cluster's passive health see what
/// they saw before. The cluster's <c>HttpRequest.ActivityTimeout</c> (YARP's, 100 s by default) is
/// kept too, by <see cref="WebSocketRelays"/>' sweep once a second instead of a timer per connection:
/// a WebSocket with no bytes either way for that long is closed with 1001, as a drain would close it.
/// </para>
/// </summary>
internal sealed partial class WebSocketRelay
{
    /// <summary>YARP's activity timeout when the cluster sets none.</summary>
    internal static readonly TimeSpan DefaultActivityTimeout = TimeSpan.FromSeconds(100);

    /// <summary>The most read at once from either side, as YARP's copy reads: rented only while bytes move (towards the client, at most the buffer's room).</summary>
    private const int ReadBytes = 64 * 1024;

    private const int UpstreamEnded = 1;
    private const int DownstreamEnded = 2;

    private readonly TimeSpan _activityTimeout;
    private Stream? _backend;
    private CancellationTokenSource? _stopUpstream;
    private int _firstEnded;
    private long _lastActivity;
    private IRelayedRequestEnd? _requestEnd; // the outer middleware's end of the request (TakeRequestEnd), under the monitor
    private long _requestStarted;
    private bool _finished; // RunAsync has finished (under the monitor)

    /// <summary>Called with the backend's side of the upgraded connection; the relay owns it from here. YARP gets a stream that has ended.</summary>
    public Stream AttachBackend(Stream backend)
    {
        Touch(); // the activity clock starts before the sweep can see a backend
        Volatile.Write(ref _backend, backend);
        return Stream.Null;
    }

    /// <summary>True once both sides are upgraded and handed to the relay: <see cref="RunAsync"/> carries the connection.</summary>
    public bool CarriesConnection => _backend is not null && _client is not null;

    /// <summary>
    /// Whether the request is a WebSocket the relay carries, once YARP's handshake has returned: its outcome is the
    /// copy's, reported when that ends. Cheap for every other request (a status and a method compared).
    /// </summary>
    public static bool Carries(HttpContext context)
        => (context.Response.StatusCode == StatusCodes.Status101SwitchingProtocols || HttpMethods.IsConnect(context.Request.Method))
            && context.Features.Get<WebSocketRelay>() is { CarriesConnection: true };

    /// <summary>
    /// The rest of the request, in one frame (an idle WebSocket keeps it for life): YARP's handshake
    /// (<paramref name="next"/>), then, once it has returned with both sides handed over, the copies
    /// both ways until both have ended, backend to client here and client to backend in
    /// <see cref="CopyUpstreamAsync"/>; then the close (<see cref="CompleteAsync"/>). The first failure,
    /// if any, is set as the request's <see cref="IForwarderErrorFeature"/> and reported with the
    /// connection's end to the host (passive health).
    /// </summary>
    public async Task RunAsync(RequestDelegate next)
    {
        try
        {
            await next(_context);
            if (!CarriesConnection)
            {
                return;
            }

            // YARP's handshake has returned, and with it every frame of the proxy pipeline under this one. The
            // retries' per-request state is of no use to the copy.
            _context.Features.Set<Resilience.RetryAttempt>(null);
            var stop = new CancellationTokenSource(); // disposed when the copies end (below); used before any await, so no field of this frame
            lock (this)
            {
                _stopUpstream = stop;
            }

            // The client's connection lost (or aborted by the gateway) ends both copies, as it ended YARP's, whose
            // token was linked to the request's. A reset fails the client's pending read, but nothing else would end the
            // backend's side when an HTTP/1.1 client's FIN ends its side cleanly, or when the client is lost while the
            // copy waits on a write to a backend that does not read. (The callback costs an idle WebSocket nothing: the
            // request's token source keeps its list, and a free entry in it, from YARP's own registration during the
            // handshake.)
            var aborted = _context.RequestAborted.UnsafeRegister(static state => ((WebSocketRelay)state!).StopCopying(), this);

            // The backend's stream and the source that stops the client's reads are read from the relay's fields where
            // used, not kept in locals: this frame waits for an idle WebSocket's whole life, and each local that lives
            // across an await is a field of it.
            byte[]? buffer = null;
            try
            {
                var upstream = CopyUpstreamAsync();

                // Backend to client: wait for data without a buffer and for room (the backend gate), then read at most the room.
                // The zero-byte read comes first: it also takes the last read's buffer (given back to the pool) out of the
                // socket's receive operation, which keeps what it last read into until its next read, and a client that
                // stopped reading kept the copy waiting at the gate for good, with that buffer pinned.
                var downstream = CopyEnd.Success;
                var reading = true;
                try
                {
                    while (true)
                    {
                        reading = true;
                        _ = await _backend!.ReadAsync(Memory<byte>.Empty); // waits for data without a buffer
                        var limit = Math.Min(await BackendReadLimitAsync(CancellationToken.None), ReadBytes);
                        buffer = ArrayPool<byte>.Shared.Rent(limit);
                        var read = await _backend!.ReadAsync(buffer.AsMemory(0, limit));
                        if (read == 0)
                        {
                            break;
                        }

                        Touch();
                        reading = false;
                        await WriteAsync(buffer.AsMemory(0, read), CancellationToken.None);
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = null;
                    }
                }
                catch (Exception ex)
                {
                    // After the client's side failed (a write timeout, an abort), the backend's connection is closed under
                    // this read to end it: the failure is the client's side's.
                    downstream = new CopyEnd(ex, reading && !HasFailed());
                }

                var downstreamFirst = Interlocked.CompareExchange(ref _firstEnded, DownstreamEnded, 0) == 0;
                if (downstreamFirst)
                {
                    _stopUpstream!.Cancel(); // the backend's side is over: the client's reads have nowhere left to go
                }

                var upstreamEnd = await upstream;
                var upstreamFailedFirst = !downstreamFirst && upstreamEnd.Exception is not null;
                var end = upstreamFailedFirst ? upstreamEnd : downstream;
                if (end.Exception is { } exception)
                {
                    _context.Features.Set<IForwarderErrorFeature>(new Resilience.ProxyErrorFeature(ErrorOf(end, request: upstreamFailedFirst), exception));
                }
            }
            finally
            {
                if (buffer is not null)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }

                aborted.Dispose();
                CancellationTokenSource? stopped;
                lock (this)
                {
                    stopped = _stopUpstream;
                    _stopUpstream = null;
                }

                stopped?.Dispose();
                _backend!.Dispose(); // as YARP's copy did when both directions ended; the client's side drains what is buffered
            }

            _relays.CopyEnded(_context);
        }
        finally
        {
            try
            {
                await CompleteAsync();
            }
            finally
            {
                EndRequest();
            }
        }
    }

    /// <summary>
    /// Takes on the outer middleware's work for the request's end (<paramref name="end"/>, given the time it started), so
    /// that it need not wait for <see cref="RunAsync"/> in a frame of its own; false once the relay has finished, when the
    /// caller does it itself.
    /// </summary>
    public bool TakeRequestEnd(IRelayedRequestEnd end, long started)
    {
        lock (this)
        {
            if (_finished)
            {
                return false;
            }

            _requestEnd = end;
            _requestStarted = started;
            return true;
        }
    }

    private void EndRequest()
    {
        IRelayedRequestEnd? end;
        lock (this)
        {
            _finished = true;
            end = _requestEnd;
            _requestEnd = null;
        }

        end?.RequestEnded(_context, _requestStarted);
    }

    /// <summary>
    /// Client to backend: a zero-byte read first, so that an idle client holds no buffer; each write flushed (HTTP/2
    /// request streams buffer). The backend's stream and the stop token are read from the relay's fields, which are set
    /// before this starts and cleared only after it has ended: this frame also waits for an idle WebSocket's life.
    /// </summary>
    private async Task<CopyEnd> CopyUpstreamAsync()
    {
        byte[]? buffer = null;
        var reading = true;
        try
        {
            while (true)
            {
                reading = true;
                _ = await ReadAsync(Memory<byte>.Empty, _stopUpstream!.Token); // the client's, waiting for data without a buffer
                buffer = ArrayPool<byte>.Shared.Rent(ReadBytes);
                var read = await ReadAsync(buffer, _stopUpstream!.Token);
                if (read == 0)
                {
                    break;
                }

                Touch();
                reading = false;
                await _backend!.WriteAsync(buffer.AsMemory(0, read), _stopUpstream!.Token);
                await _backend!.FlushAsync(_stopUpstream!.Token);
                ArrayPool<byte>.Shared.Return(buffer);
                buffer = null;
            }
        }
        catch (Exception ex)
        {
            return EndUpstream(new CopyEnd(ex, reading));
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        return EndUpstream(CopyEnd.Success);
    }

    private CopyEnd EndUpstream(CopyEnd end)
    {
        if (Interlocked.CompareExchange(ref _firstEnded, UpstreamEnded, 0) == 0 && end.Exception is not null)
        {
            _backend!.Dispose(); // the client's side failed first: the backend's read ends with it
        }

        return end;
    }

    /// <summary>Stops both copies: the client's reads are cancelled, the backend's connection closed.</summary>
    private void StopCopying()
    {
        CancellationTokenSource? stop;
        lock (this)
        {
            stop = _stopUpstream;
        }

        try
        {
            stop?.Cancel(); // outside the lock: a cancelled read's continuation may run here
        }
        catch (ObjectDisposedException)
        {
            // the copy has just ended
        }

        _backend?.Dispose();
    }

    private bool HasFailed()
    {
        lock (this)
        {
            return _failure is not null;
        }
    }

    private void Touch() => Volatile.Write(ref _lastActivity, _time.GetTimestamp());

    /// <summary>
    /// Called by the sweep: a WebSocket with no bytes either way (a client taking buffered bytes counts) for the
    /// cluster's activity timeout is closed with 1001 at the next frame boundary, bounded by <see cref="WebSocketSettings.CloseTimeout"/>.
    /// </summary>
    public void CloseIfIdle(long now)
    {
        if (Volatile.Read(ref _backend) is null)
        {
            return;
        }

        var idle = _time.GetElapsedTime(Volatile.Read(ref _lastActivity), now);
        if (idle >= WriteTimeoutKeptFor && Volatile.Read(ref _writeTimeout) is not null) // no lock for the many that hold none
        {
            ReleaseWriteTimeout();
        }

        if (idle < _activityTimeout)
        {
            return;
        }

        RequestClose(CloseFrame.GoingAway, EvictionReason.Idle, $"gateway: no bytes either way for {_activityTimeout.TotalSeconds:0.###} s (the cluster's ActivityTimeout)");
    }

    private static TimeSpan ActivityTimeoutOf(HttpContext context)
        => context.Features.Get<Yarp.ReverseProxy.Model.IReverseProxyFeature>()?.Cluster?.Config.HttpRequest?.ActivityTimeout ?? DefaultActivityTimeout;

    // As YARP's HttpForwarder names a copy's failure: the side that failed, and a cancellation when the client's request was aborted.
    private ForwarderError ErrorOf(CopyEnd end, bool request)
    {
        if (_context.RequestAborted.IsCancellationRequested)
        {
            return request ? ForwarderError.UpgradeRequestCanceled : ForwarderError.UpgradeResponseCanceled;
        }

        return (request, end.Reading) switch
        {
            (true, true) => ForwarderError.UpgradeRequestClient,
            (true, false) => ForwarderError.UpgradeRequestDestination,
            (false, true) => ForwarderError.UpgradeResponseDestination,
            (false, false) => ForwarderError.UpgradeResponseClient,
        };
    }

    /// <summary>How one direction ended: cleanly (no exception), or failing while reading its source or writing to its sink.</summary>
    private sealed record CopyEnd(Exception? Exception, bool Reading)
    {
        public static readonly CopyEnd Success = new(null, false);
    }
}
