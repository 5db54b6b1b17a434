using System.IO.Pipelines;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using YarpGateway.Configuration;
using YarpGateway.Endpoints;

namespace YarpGateway.Admission;

/// <summary>
/// Accept backpressure on the proxy endpoint: a new connection takes a token from a bucket (refilled
/// at the adaptive rate, <see cref="AdaptiveConnectionRate"/>, or at the fixed
/// <see cref="ConnectionAdmissionOptions.RatePerSecond"/>; <see cref="ConnectionAdmissionOptions.Burst"/> deep),
/// or, with the adaptive rate and paced accept, first a place in the accept window
/// (<see cref="ConnectionAdmissionOptions.AcceptWindow"/>: new connections let in as fast as their first
/// responses start, a bounded number at once), then, once it has sent its first bytes, a slot among the
/// connections still in their first request
/// (see <see cref="FirstRequestGate"/>), waiting for each (FIFO, at most
/// <see cref="ConnectionAdmissionOptions.MaxWait"/>) when it is exhausted; past the wait it is
/// closed. With <see cref="ConnectionAdmissionOptions.PaceAccept"/> (the default) the token is taken
/// before the connection is accepted (<see cref="PacedAcceptListenerFactory"/>), so a connection
/// waiting for one waits in the kernel's listen queue. This is not a cap on open connections: it
/// spreads a reconnect storm over time so the thread pool keeps serving the connections already open. Settings apply to connections that
/// arrive after a reload.
/// </summary>
internal sealed partial class ConnectionAdmission : IProxyConnectionMiddleware, AcceptWindowSlot.IHolders, IDisposable
{
    private readonly AdmissionMetrics _metrics;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<ConnectionAdmission> _logger;
    private readonly ReloadableOptions<AdmissionOptions> _options;
    private readonly Action _firstRequestExpired;
    private readonly Telemetry.SchedulerDelayProbe _probe;
    private readonly Telemetry.SocketEngineProbe? _socketProbe;
    private readonly EstablishedRequests? _established;
    private volatile State _state;
    private readonly Dictionary<ITimer, State> _retiring = []; // held here: a timer nothing refers to may be collected before it fires
    private long _lastPlaceTaken; // when an accept last took a place in the accept window (a TimeProvider timestamp)
    private int _placesHeld; // places in the accept window that connections hold

    public ConnectionAdmission(ReloadableOptions<AdmissionOptions> options, AdmissionMetrics metrics, Telemetry.SchedulerDelayProbe probe, TimeProvider timeProvider, ILogger<ConnectionAdmission> logger,
        Telemetry.SocketEngineProbe? socketProbe = null, EstablishedRequests? established = null)
    {
        _established = established;
        _metrics = metrics;
        _timeProvider = timeProvider;
        _logger = logger;
        _options = options;
        _probe = probe;
        _socketProbe = socketProbe;
        _firstRequestExpired = metrics.ConnectionFirstRequestExpired; // one delegate, not one per connection
        _state = new State(options.Current.Connections, probe, socketProbe, established, timeProvider, logger);
        options.Changed += OnOptionsChanged;
        metrics.ObserveConnectionRate(() => _state.Adaptive is { } adaptive
            ? (adaptive.Rate, adaptive.Target.TotalSeconds, adaptive.MeasuredDelay.TotalSeconds)
            : (_state.Options.RatePerSecond, 0, 0));
        metrics.ObserveAcceptWindow(() => (AcceptWindowInUse, AcceptWindowSize));
    }

    /// <summary>The adaptive rate now, when it runs (the status page, tests).</summary>
    internal AdaptiveConnectionRate? Adaptive => _state.Adaptive;

    /// <summary>
    /// Connections waiting in the gateway for a token or a first-request slot (the status page, tests).
    /// With paced accept the token's waiters are the listeners' accept loops, not connections: the
    /// connections wait in the kernel (<see cref="Endpoints.ProxyListenQueue"/>).
    /// </summary>
    internal long Waiting
    {
        get
        {
            var state = _state;
            var forTokens = state.Options.PaceAccept ? 0 : state.Rate?.GetStatistics()?.CurrentQueuedCount ?? 0;
            return forTokens + (state.FirstRequest?.GetStatistics()?.CurrentQueuedCount ?? 0);
        }
    }

    /// <summary>
    /// New connections holding a place in the accept window now (metrics, the status page, tests); not counted: the
    /// place a listener may hold for the connection it has yet to accept.
    /// </summary>
    internal int AcceptWindowInUse => Volatile.Read(ref _placesHeld);

    /// <summary>The accept window's size now (0 when it does not run).</summary>
    internal int AcceptWindowSize => _state.Window?.Size ?? 0;

    void AcceptWindowSlot.IHolders.Took() => Interlocked.Increment(ref _placesHeld);

    void AcceptWindowSlot.IHolders.Gave() => Interlocked.Decrement(ref _placesHeld);

    /// <summary>Connections holding a first-request slot (for tests and diagnostics).</summary>
    internal long FirstRequestSlotsInUse
    {
        get
        {
            var state = _state;
            return state.FirstRequest is null ? 0 : state.Options.MaxFirstRequestConnections - (state.FirstRequest.GetStatistics()?.CurrentAvailablePermits ?? 0);
        }
    }

    private void OnOptionsChanged(AdmissionOptions options)
    {
        var next = new State(options.Connections, _probe, _socketProbe, _established, _timeProvider, _logger);
        var previous = _state;
        if (next.Options != previous.Options)
        {
            // The old limiters serve only connections already waiting on them, at most MaxWait; then they go.
            // A paced accept waiting on them moves to the new ones at once.
            _state = next;
            previous.Retire();
            var retire = previous.Options.MaxWait + TimeSpan.FromSeconds(1);
            lock (_retiring)
            {
                ITimer? timer = null;
                timer = _timeProvider.CreateTimer(_ =>
                {
                    lock (_retiring)
                    {
                        if (!_retiring.Remove(timer!))
                        {
                            return; // disposed with the admission meanwhile
                        }
                    }

                    previous.Dispose();
                    timer!.Dispose();
                }, null, retire, Timeout.InfiniteTimeSpan);
                _retiring.Add(timer, previous);
            }
        }
        else
        {
            next.Dispose();
        }
    }

    public ConnectionDelegate Wrap(ConnectionDelegate next, KestrelServerLimits limits) => connection => OnConnectionAsync(connection, next, limits);

    /// <summary>How often a paced accept waiting for a token looks at the listen queue.</summary>
    internal static readonly TimeSpan ListenQueueCheck = TimeSpan.FromMilliseconds(10);

    /// <summary>
    /// Before a paced listener accepts its next connection: takes a place in the accept window (when it runs) or,
    /// without a window or once it has stalled (<see cref="WindowStallTime"/>), a token of the connection rate,
    /// waiting while there is none, when <see cref="ConnectionAdmissionOptions.PaceAccept"/> is on and a rate runs.
    /// Returns whether it took one (false: the connection takes its token, if any, in the gateway), and the
    /// window's place if it took that (the caller's to give back). It stops waiting, and returns false, once
    /// <paramref name="queueNearlyFull"/> says the kernel's listen queue is about to overflow: past that the kernel
    /// would drop new clients' handshakes, so the excess waits in the gateway instead. Throws
    /// <see cref="OperationCanceledException"/> when <paramref name="cancellationToken"/> fires (the listener stops).
    /// </summary>
    internal async ValueTask<(bool Paced, AcceptWindowSlot? Slot)> PaceAcceptAsync(Func<bool> queueNearlyFull, CancellationToken cancellationToken)
    {
        while (true)
        {
            var state = _state;
            if (!state.Options.PaceAccept || state.Rate is not { } rate)
            {
                return (false, null);
            }

            // The window first: a place frees each time a new connection's first request goes to a backend (while
            // the gateway keeps up) or its first response starts, so in a storm the next connection comes in as the
            // last is answered. The rate's tokens are for when the window
            // stalls (no place taken for WindowStallTime: slow first responses, silent clients), and without a window.
            var window = state.Window;
            if (window is not null && window.TryTake())
            {
                return (true, TookPlace(window));
            }

            var tokensToo = window is null || WindowStalled;
            if (tokensToo)
            {
                using var lease = rate.AttemptAcquire(1);
                if (lease.IsAcquired)
                {
                    return (true, null);
                }
            }

            if (queueNearlyFull())
            {
                return (false, null);
            }

            var started = _timeProvider.GetTimestamp();
            var token = false;
            try
            {
                // A slice at a time, so that a filling listen queue, and a stalled window, are seen.
                using var slice = new CancellationTokenSource(ListenQueueCheck, _timeProvider);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, state.Retired, slice.Token);
                if (window is null)
                {
                    if (!(token = await TokenAsync(rate, linked.Token)))
                    {
                        // No room to queue (MaxWaiting 0): look again a slice later.
                        await Task.Delay(ListenQueueCheck, _timeProvider, cancellationToken);
                    }
                }
                else if (tokensToo)
                {
                    token = await TokenOrRoomAsync(rate, window, linked);
                }
                else
                {
                    await window.WaitForRoomAsync(linked.Token);
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // The slice ended, or the settings changed: look at the queue, then wait on the settings now.
            }
            finally
            {
                _metrics.AcceptPaused(_timeProvider.GetElapsedTime(started));
            }

            if (token)
            {
                return (true, null);
            }

            // Room in the window, perhaps: taken at the top, as the first look was.
        }
    }

    /// <summary>
    /// No place in the accept window taken for this long: the window alone would pace too slowly (slow first
    /// responses, silent clients), and the rate's tokens admit too. Shorter, a storm's first responses delayed by a
    /// collection or by compiling let the rate's tokens add to the window's connections, at the open connections' cost.
    /// </summary>
    internal static readonly TimeSpan WindowStallTime = TimeSpan.FromMilliseconds(100);

    private bool WindowStalled => _timeProvider.GetElapsedTime(Volatile.Read(ref _lastPlaceTaken)) >= WindowStallTime;

    private AcceptWindowSlot TookPlace(AcceptWindow window)
    {
        Volatile.Write(ref _lastPlaceTaken, _timeProvider.GetTimestamp());
        return new AcceptWindowSlot(window, this);
    }

    private static async ValueTask<bool> TokenAsync(RateLimiter rate, CancellationToken cancellationToken)
    {
        using var lease = await rate.AcquireAsync(1, cancellationToken);
        return lease.IsAcquired; // a token bucket's lease holds nothing
    }

    /// <summary>
    /// Waits for a token or for room in the window, whichever comes first; true when it took a token. Throws
    /// <see cref="OperationCanceledException"/> when <paramref name="stop"/> fires first.
    /// </summary>
    private static async ValueTask<bool> TokenOrRoomAsync(RateLimiter rate, AcceptWindow window, CancellationTokenSource stop)
    {
        using var either = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
        var token = rate.AcquireAsync(1, either.Token).AsTask();
        var room = window.WaitForRoomAsync(either.Token);
        var tokenFirst = await Task.WhenAny(token, room) == token && token.IsCompletedSuccessfully;
        if (!tokenFirst)
        {
            either.Cancel(); // the token's wait ends too
        }

        bool gotToken;
        try
        {
            using var lease = await token;
            gotToken = lease.IsAcquired;
        }
        catch (OperationCanceledException)
        {
            gotToken = false;
        }

        if (tokenFirst && !gotToken)
        {
            // No room to queue for a token (MaxWaiting 0): room in the window, or the slice's end.
            await room;
            return false;
        }

        either.Cancel(); // the room's wait ends too
        if (!gotToken && !room.IsCompletedSuccessfully)
        {
            stop.Token.ThrowIfCancellationRequested();
        }

        return gotToken;
    }

    private Task OnConnectionAsync(ConnectionContext connection, ConnectionDelegate next, KestrelServerLimits limits)
    {
        var state = _state;
        // A connection a paced listener accepted took its token (or its place in the window) before it was accepted.
        var (paced, slot) = PacedAcceptListenerFactory.TakePacing(connection);
        slot?.TakenBy();
        var rate = state.Rate is { } bucket && !paced ? bucket : null;
        if (rate is null && state.FirstRequest is null && slot is null)
        {
            return next(connection);
        }

        return AdmitThenRunAsync(connection, next, AdmitConnectionAsync(connection, state, rate, slot, limits));
    }

    // Two frames, not one: the admission's (its waits, leases and timings) is gone once the connection
    // is admitted, and what a connection keeps for its life (an idle WebSocket, a keep-alive client)
    // is this one, which holds the gate and the wait for the rest of the pipeline: 184 bytes, not 224.
    private static async Task AdmitThenRunAsync(ConnectionContext connection, ConnectionDelegate next, ValueTask<(bool Admitted, FirstRequestGate? Gate)> admission)
    {
        var (admitted, gate) = await admission;
        if (!admitted)
        {
            return;
        }

        try
        {
            await next(connection);
        }
        finally
        {
            gate?.Release();
        }
    }

    /// <summary>
    /// Admits a connection: a token from the connection rate (unless a paced listener took it, or a place
    /// in the accept window, before accepting), then, once its first bytes arrive, a first-request slot.
    /// Not admitted: the connection was closed (and counted) while it waited; its place in the window is
    /// given back.
    /// </summary>
    private async ValueTask<(bool Admitted, FirstRequestGate? Gate)> AdmitConnectionAsync(ConnectionContext connection, State state, RateLimiter? rate, AcceptWindowSlot? slot, KestrelServerLimits limits)
    {
        var (admitted, gate) = await AdmitConnectionAsync(connection, state, rate, slot, limits.RequestHeadersTimeout);
        if (!admitted || gate is null)
        {
            slot?.Release(); // with a gate, the gate gives it back
        }

        return (admitted, gate);
    }

    private async ValueTask<(bool Admitted, FirstRequestGate? Gate)> AdmitConnectionAsync(ConnectionContext connection, State state, RateLimiter? rate, AcceptWindowSlot? slot, TimeSpan requestHeadersTimeout)
    {
        TimeSpan? waited = null; // set when the connection had to wait for either
        if (rate is not null)
        {
            var (token, tokenWait) = await AdmitAsync(connection, rate, state.Options.MaxWait);
            if (token is null)
            {
                return (false, null);
            }

            token.Dispose(); // a token bucket's lease holds nothing
            waited = tokenWait;
        }

        FirstRequestGate? gate = null;
        if (state.FirstRequest is not null || slot is not null)
        {
            // A connection that has sent nothing is not in a request yet (browsers open spare
            // connections and leave them idle): it takes its slot when its first bytes arrive, and
            // holds its place in the accept window meanwhile for at most MaxFirstRequestTime.
            if (!await FirstBytesAsync(connection, requestHeadersTimeout, slot, state.Options.MaxFirstRequestTime))
            {
                return (false, null);
            }

            RateLimitLease? firstRequestSlot = null;
            if (state.FirstRequest is { } firstRequest)
            {
                (firstRequestSlot, var slotWait) = await AdmitAsync(connection, firstRequest, state.Options.MaxWait);
                if (firstRequestSlot is null)
                {
                    return (false, null);
                }

                if (slotWait is { } slotWaited)
                {
                    waited = (waited ?? TimeSpan.Zero) + slotWaited;
                }
            }

            gate = new FirstRequestGate(firstRequestSlot, state.Options.MaxFirstRequestTime, _timeProvider, _firstRequestExpired, slot);
            gate.AttachTo(connection.Items);
        }

        if (waited is { } delay)
        {
            _metrics.ConnectionDelayed(delay);
        }

        return (true, gate);
    }

    /// <summary>
    /// A permit from <paramref name="limiter"/>, waiting first in first out up to <paramref name="maxWait"/>,
    /// with how long it waited (null: not at all); no permit (and the connection closed, counted by
    /// reason) when it cannot have one.
    /// </summary>
    private async ValueTask<(RateLimitLease? Lease, TimeSpan? Waited)> AdmitAsync(ConnectionContext connection, RateLimiter limiter, TimeSpan maxWait)
    {
        var lease = limiter.AttemptAcquire(1);
        if (lease.IsAcquired)
        {
            return (lease, null);
        }

        lease.Dispose();
        var started = _timeProvider.GetTimestamp();
        var closeRequested = ConnectionCloseRequest.Token(connection);
        try
        {
            using var deadline = new CancellationTokenSource(maxWait, _timeProvider);
            using var cancel = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, connection.ConnectionClosed, closeRequested);
            lease = await limiter.AcquireAsync(1, cancel.Token);
        }
        catch (OperationCanceledException)
        {
            var reason = connection.ConnectionClosed.IsCancellationRequested ? "client_gone" : closeRequested.IsCancellationRequested ? "shutdown" : "wait_timeout";
            Close(connection, reason, started);
            return (null, null);
        }

        if (!lease.IsAcquired)
        {
            lease.Dispose();
            Close(connection, "queue_full", started);
            return (null, null);
        }

        return (lease, _timeProvider.GetElapsedTime(started));
    }

    /// <summary>
    /// Waits for the connection's first bytes and leaves them unread for Kestrel. False when the client
    /// closes first, sends nothing within Kestrel's request headers timeout, or the server shuts down
    /// meanwhile (the connection is then closed, as Kestrel would close it). A place in the accept window
    /// is given back if the bytes take longer than <paramref name="maxWindowHold"/>.
    /// </summary>
    private async ValueTask<bool> FirstBytesAsync(ConnectionContext connection, TimeSpan timeout, AcceptWindowSlot? slot, TimeSpan maxWindowHold)
    {
        var input = connection.Transport.Input;
        ReadResult result;
        if (!input.TryRead(out result))
        {
            var closeRequested = ConnectionCloseRequest.Token(connection);
            using var windowHold = slot is null ? null : _timeProvider.CreateTimer(static s => ((AcceptWindowSlot)s!).Release(), slot, maxWindowHold, Timeout.InfiniteTimeSpan);
            try
            {
                using var deadline = new CancellationTokenSource(timeout, _timeProvider);
                using var cancel = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, connection.ConnectionClosed, closeRequested);
                result = await input.ReadAsync(cancel.Token);
            }
            catch (OperationCanceledException)
            {
                if (closeRequested.IsCancellationRequested)
                {
                    ConnectionCloseRequest.Abort(connection);
                }
                else
                {
                    connection.Abort(new ConnectionAbortedException("No bytes within the request headers timeout."));
                }

                return false;
            }
        }

        var empty = result.Buffer.IsEmpty;
        input.AdvanceTo(result.Buffer.Start); // nothing consumed or examined: Kestrel's first read returns at once
        return !empty;
    }

    private void Close(ConnectionContext connection, string reason, long started)
    {
        _metrics.ConnectionAdmissionClosed(reason, _timeProvider.GetElapsedTime(started));
        Log.Closed(_logger, connection.ConnectionId, reason);
        connection.Abort(new ConnectionAbortedException($"Connection admission: {reason}."));
    }

    public void Dispose()
    {
        _options.Changed -= OnOptionsChanged;
        _state.Dispose();
        lock (_retiring)
        {
            foreach (var (timer, state) in _retiring)
            {
                timer.Dispose();
                state.Dispose();
            }

            _retiring.Clear();
        }
    }

    private sealed class State : IDisposable
    {
        private readonly CancellationTokenSource _retired = new();

        public State(ConnectionAdmissionOptions options, Telemetry.SchedulerDelayProbe probe, Telemetry.SocketEngineProbe? socketProbe, EstablishedRequests? established, TimeProvider timeProvider, ILogger logger)
        {
            var adaptive = options.Adaptive;
            Options = new Settings(options.RatePerSecond, options.Burst, options.MaxFirstRequestConnections, options.MaxFirstRequestTime, options.MaxWait, options.MaxWaiting,
                options.PaceAccept, options.AcceptWindow, adaptive.Enabled, adaptive.TargetDelay, adaptive.EstablishedTarget, adaptive.EstablishedRequestRate, adaptive.InitialRate, adaptive.MinRate, adaptive.MaxRate);
            if (adaptive.Enabled && options.Burst > 0)
            {
                // A non-zero RatePerSecond is a ceiling the adaptive rate never exceeds, nor the window passes.
                var max = options.RatePerSecond > 0 ? Math.Min(adaptive.MaxRate, options.RatePerSecond) : adaptive.MaxRate;
                var min = Math.Min(adaptive.MinRate, max);
                Window = options.PaceAccept && options.AcceptWindow > 0 && options.RatePerSecond == 0 ? new AcceptWindow(options.AcceptWindow) : null;
                Adaptive = new AdaptiveConnectionRate(new AdaptiveRateController(adaptive.InitialRate, min, max, adaptive.TargetDelay, adaptive.EstablishedTarget), options.Burst, options.MaxWaiting,
                    probe, socketProbe, timeProvider, logger, Window, established is null ? null : (established, adaptive.EstablishedRequestRate));
                Rate = Adaptive.Bucket;
            }
            else if (options.RatePerSecond > 0 && options.Burst > 0)
            {
                _bucket = new TokenBucket(options.RatePerSecond, options.Burst, options.MaxWaiting, timeProvider);
                Rate = _bucket.Limiter;
            }

            FirstRequest = options.MaxFirstRequestConnections > 0
                ? new ConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = options.MaxFirstRequestConnections, QueueLimit = options.MaxWaiting, QueueProcessingOrder = QueueProcessingOrder.OldestFirst })
                : null;
        }

        public Settings Options { get; }

        private readonly TokenBucket? _bucket;

        public RateLimiter? Rate { get; }

        public AdaptiveConnectionRate? Adaptive { get; }

        public ConcurrencyLimiter? FirstRequest { get; }

        /// <summary>The accept window, when it runs (its size set with the adaptive rate's).</summary>
        public AcceptWindow? Window { get; }

        /// <summary>Fires when newer settings replace these.</summary>
        public CancellationToken Retired => _retired.Token;

        public void Retire() => _retired.Cancel();

        public void Dispose()
        {
            _retired.Dispose();
            _bucket?.Dispose();
            Adaptive?.Dispose();
            FirstRequest?.Dispose();
        }
    }

    private sealed record Settings(int RatePerSecond, int Burst, int MaxFirstRequestConnections, TimeSpan MaxFirstRequestTime, TimeSpan MaxWait, int MaxWaiting,
        bool PaceAccept, int AcceptWindow, bool Adaptive, TimeSpan TargetDelay, TimeSpan EstablishedTargetDelay, int EstablishedRequestRate, int InitialRate, int MinRate, int MaxRate);

    private static partial class Log
    {
        // Debug: in a storm this fires per connection; the counters carry the totals.
        [LoggerMessage(1, LogLevel.Debug, "Connection {ConnectionId} closed by connection admission: {Reason}.", EventName = "ConnectionAdmissionClosed")]
        public static partial void Closed(ILogger logger, string connectionId, string reason);
    }
}
