using System.Threading.RateLimiting;
using Microsoft.Extensions.ObjectPool;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace YarpGateway.Resilience;

/// <summary>Why an attempt failed, as the <c>reason</c> tag on retry metrics and in logs.</summary>
internal enum AttemptFailure
{
    None,
    ConnectFailure,
    ConnectTimeout,
    ConnectionReset,
    TryTimeout,
    ActivityTimeout,
    Status,
    /// <summary>No backend connection made: the gateway's own limit (<see cref="Endpoints.BackendConnectionLimit"/>). Answered 503.</summary>
    BackendConnectionLimit,
    Other,
}

/// <summary>
/// One proxied request's retry state, shared (as a request feature) by <see cref="ProxyRetryMiddleware"/>,
/// the response transform that holds back a retryable status, and the outlier-ejection policy.
/// Pooled (<see cref="Policy"/>): a request whose end this attempt did (<see cref="EndRequest"/>) gives it back, the common case;
/// any other (an upgrade, a request that ended before the hand-over) leaves it to the collector.
/// </summary>
internal sealed class RetryAttempt(ResilienceMetrics metrics) : IDisposable
{
    private List<DestinationState>? _failed;
    private CancellationTokenSource? _tryTimer;
    private CancellationTokenSource? _tryTimeout;
    private CancellationToken _requestAborted;

    // The outer frame's end of the request (TakeRequestEnd): 0 not handed over, 1 handed over, 2 the retry frame has ended.
    private int _endState;
    private IProxiedRequestEnd? _requestEnd;
    private RateLimitLease? _lease;
    private long _started;

    public RetryAttempt(HttpContext context, IReverseProxyFeature proxy, ResilienceSettings settings, RetryBudget budget, bool retryUnsent, bool repeatable, ResilienceMetrics metrics)
        : this(metrics)
        => Start(context, proxy, settings, budget, retryUnsent, repeatable);

    public HttpContext Context { get; private set; } = null!;

    public IReverseProxyFeature Proxy { get; private set; } = null!;

    public ResilienceSettings Settings { get; private set; } = null!;

    public RetryBudget Budget { get; private set; } = null!;

    /// <summary>
    /// May be retried when nothing reached the destination (no connection could be made): any request, POST, PATCH
    /// and WebSocket handshakes included, with a body it has not begun to send.
    /// </summary>
    public bool RetryUnsent { get; private set; }

    /// <summary>Safe to send again whatever happened until the response starts: an idempotent method (PUT/DELETE only when the route opts in) with no body or a buffered one, or a WebSocket handshake.</summary>
    public bool Repeatable { get; private set; }

    /// <summary>Attempts made so far (1 during the first).</summary>
    public int Number { get; private set; }

    /// <summary>A retry was taken from the budget while the response was held back.</summary>
    public bool RetryReserved { get; private set; }

    public AttemptFailure LastFailure { get; private set; }

    /// <summary>Set when the request was answered 504 for a timeout: connect, try, route or activity.</summary>
    public string? TimeoutKind { get; set; }

    /// <summary>The available destinations as load balancing first saw them.</summary>
    public IReadOnlyList<DestinationState> Candidates { get; private set; } = [];

    /// <summary>Takes a new (or given back) attempt for a request, before its first attempt.</summary>
    public void Start(HttpContext context, IReverseProxyFeature proxy, ResilienceSettings settings, RetryBudget budget, bool retryUnsent, bool repeatable)
    {
        Context = context;
        Proxy = proxy;
        Settings = settings;
        Budget = budget;
        RetryUnsent = retryUnsent;
        Repeatable = repeatable;
        Candidates = proxy.AvailableDestinations;
    }

    /// <summary>True while the current attempt's try timeout has fired (and the client is still there).</summary>
    public bool TryTimedOut => _tryTimeout?.IsCancellationRequested == true && !_requestAborted.IsCancellationRequested;

    /// <summary>
    /// Takes on the outer frame's work for the request's end (<paramref name="end"/>, with the global limit's lease and the
    /// time the request started), done by <see cref="EndRequest"/> at the end of the retry middleware's frame; false once that
    /// frame has ended, when the caller does it itself.
    /// </summary>
    public bool TakeRequestEnd(IProxiedRequestEnd end, RateLimitLease? lease, long started)
    {
        _requestEnd = end;
        _lease = lease;
        _started = started;
        return Interlocked.CompareExchange(ref _endState, 1, 0) == 0;
    }

    /// <summary>
    /// The retry middleware's frame has ended: does the outer frame's end of the request if it was handed over, and then says
    /// true: nothing refers to this attempt any more but the request's features (the caller removes it there), so it can be
    /// given back to the pool. False when it was not handed over: the outer frame may still read it (an upgrade's relay,
    /// a request that ended before the hand-over).
    /// </summary>
    public bool EndRequest()
    {
        if (Interlocked.Exchange(ref _endState, 2) != 1)
        {
            return false;
        }

        var end = _requestEnd!;
        var lease = _lease;
        _requestEnd = null;
        _lease = null;
        end.RequestEnded(Context, lease, _started);
        return true;
    }

    /// <summary>Called by the response transform: holds back a retryable status if a retry can follow.</summary>
    public bool TryReserveRetryForStatus(int status)
    {
        if (!Repeatable || Number > Settings.MaxRetries || !Settings.RetryStatusCodes.Contains(status))
        {
            return false;
        }

        if (!Budget.TryAcquireRetry())
        {
            metrics.RetryBudgetExhausted(Proxy.Cluster?.Config.ClusterId);
            return false;
        }

        RetryReserved = true;
        return true;
    }

    /// <summary>Starts an attempt: on a retry, resets the response and excludes the destinations that failed.</summary>
    public void Begin(TimeProvider timeProvider)
    {
        Number++;
        RetryReserved = false;
        LastFailure = AttemptFailure.None;
        if (Number > 1)
        {
            Context.Response.Clear();
            Context.Features.Set<IForwarderErrorFeature>(null);
            // Destinations that failed this request are left out while others remain; once every one
            // has failed, any may be tried again (a one-destination cluster still gets its retries).
            var untried = _failed is null or { Count: 0 } ? Candidates : Candidates.Where(d => !_failed.Contains(d)).ToArray();
            Proxy.AvailableDestinations = untried.Count > 0 ? untried : Candidates;
            if (Context.Request.Body.CanSeek)
            {
                Context.Request.Body.Position = 0;
            }
        }

        _requestAborted = Context.RequestAborted;
        if (Settings.TryTimeout is { } tryTimeout)
        {
            // YARP cancels the backend request with HttpContext.RequestAborted; swap in a token that
            // also fires at the try timeout, until the response starts.
            _tryTimer = new CancellationTokenSource(tryTimeout, timeProvider);
            _tryTimeout = CancellationTokenSource.CreateLinkedTokenSource(_requestAborted, _tryTimer.Token);
            Context.Response.OnStarting(static s => Disarm((CancellationTokenSource)s), _tryTimer);
            Context.RequestAborted = _tryTimeout.Token;
        }
    }

    /// <summary>Ends an attempt and says whether another could fix it.</summary>
    public bool End()
    {
        if (_tryTimeout is not null)
        {
            Context.RequestAborted = _requestAborted;
        }

        LastFailure = Classify();
        _tryTimeout?.Dispose();
        _tryTimer?.Dispose();
        _tryTimeout = null;
        _tryTimer = null;
        if (LastFailure != AttemptFailure.None && Proxy.ProxiedDestination is { } destination)
        {
            (_failed ??= []).Add(destination);
        }

        if (Context.Response.HasStarted || _requestAborted.IsCancellationRequested)
        {
            return false;
        }

        return LastFailure switch
        {
            AttemptFailure.Status => RetryReserved,
            AttemptFailure.ConnectFailure or AttemptFailure.ConnectTimeout => RetryUnsent, // no connection: nothing was sent
            AttemptFailure.ConnectionReset or AttemptFailure.TryTimeout => Repeatable,
            _ => false,
        };
    }

    /// <summary>
    /// Whether the destination stopped taking the body while YARP waited for the client's next bytes (it reset the
    /// stream or its connection, before any answer). The handler cancels YARP's read of the client's body, and YARP takes the
    /// cancelled read for the client failing, with 400 and <c>request_body_client</c>. The client is still there (a
    /// client that left is <c>request_body_canceled</c>), and a read that timed out is 408: this is the destination's
    /// failure, answered 502 as YARP answers it when the cancellation comes second. Only YARP's own 400, which carries
    /// the read's and the handler's errors together: a backend's 400 that arrived before the cancelled read carries the
    /// read's alone, and stays the backend's answer. (Checked where the attempt's error is read anyway: no feature
    /// lookup of its own on every request.)
    /// </summary>
    private bool IsBodyTheDestinationStopped(IForwarderErrorFeature error)
        => error.Error == ForwarderError.RequestBodyClient
            && Context.Response is { HasStarted: false, StatusCode: StatusCodes.Status400BadRequest }
            && !_requestAborted.IsCancellationRequested
            && error.Exception is AggregateException { InnerExceptions: [OperationCanceledException, ..] };

    // The response started: the try timeout no longer applies (a started response is never retried).
    private static Task Disarm(CancellationTokenSource timer)
    {
        try
        {
            timer.CancelAfter(Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // The attempt ended before the response started (a later attempt's response).
        }

        return Task.CompletedTask;
    }

    private AttemptFailure Classify()
    {
        if (_tryTimeout?.IsCancellationRequested == true && !_requestAborted.IsCancellationRequested)
        {
            return AttemptFailure.TryTimeout;
        }

        if (Context.Features.Get<IForwarderErrorFeature>() is { } error)
        {
            if (IsBodyTheDestinationStopped(error))
            {
                IForwarderErrorFeature stopped = new ProxyErrorFeature(ForwarderError.RequestBodyDestination, error.Exception);
                Context.Features.Set(stopped);
                error = stopped;
                Context.Response.StatusCode = StatusCodes.Status502BadGateway;
            }

            return error.Error switch
            {
                ForwarderError.Request or ForwarderError.ResponseHeaders => ClassifyTransport(error.Exception),
                // YARP reports SocketsHttpHandler's ConnectTimeout as a timed-out request too.
                ForwarderError.RequestTimedOut => IsConnectTimeout(error.Exception) ? AttemptFailure.ConnectTimeout : AttemptFailure.ActivityTimeout,
                _ when IsActivityTimeoutAfterResponseStarted(error) => AttemptFailure.ActivityTimeout,
                _ => AttemptFailure.Other,
            };
        }

        return RetryReserved || Context.Response.StatusCode >= 500 ? AttemptFailure.Status : AttemptFailure.None;
    }

    /// <summary>
    /// Once the response has started, YARP's activity timeout cancels the body's copy and reports it
    /// as the destination's failure (a streamed response, gRPC or server-sent events, quiet for that
    /// long). A cancellation the client caused is reported as response_body_canceled instead; the
    /// reset YARP then sends aborts the request too, so RequestAborted cannot tell them apart.
    /// </summary>
    internal static bool IsActivityTimeoutAfterResponseStarted(IForwarderErrorFeature error)
        => error.Error == ForwarderError.ResponseBodyDestination && error.Exception is OperationCanceledException;

    /// <summary>
    /// A transport error: no connection (refused, unreachable, a name that does not resolve), a connect timeout, or a connection lost
    /// after connecting. A response over the client's limits (headers over 64 KiB), or one the gateway cannot
    /// pass on (see <see cref="IsTransportError"/>), is none of these: every destination answers it the same, so
    /// it is <see cref="AttemptFailure.Other"/>, not retried.
    /// </summary>
    internal static AttemptFailure ClassifyTransport(Exception? exception)
    {
        if (Endpoints.BackendConnectionLimitException.In(exception))
        {
            return AttemptFailure.BackendConnectionLimit;
        }

        if (IsConnectTimeout(exception))
        {
            return AttemptFailure.ConnectTimeout;
        }

        for (var ex = exception; ex is not null; ex = ex.InnerException)
        {
            // No connection made: refused, unreachable, or a name that does not resolve (no such host, no DNS answer).
            if (ex is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError })
            {
                return AttemptFailure.ConnectFailure;
            }

            if (ex is HttpRequestException { HttpRequestError: HttpRequestError.ConfigurationLimitExceeded })
            {
                return AttemptFailure.Other;
            }

            if (IsHttp2HandshakeNotCompleted(ex))
            {
                return AttemptFailure.ConnectFailure;
            }
        }

        return IsTransportError(exception) ? AttemptFailure.ConnectionReset : AttemptFailure.Other;
    }

    /// <summary>
    /// A failure of the network or of the destination's side of the exchange (unknown causes count too), as opposed
    /// to a request or response the gateway could not take as given: a header HttpClient cannot encode, a response
    /// header Kestrel refuses to write (a control character). Those fail the same way on every attempt.
    /// </summary>
    internal static bool IsTransportError(Exception? exception)
    {
        if (exception is null)
        {
            return true;
        }

        if (Endpoints.BackendConnectionLimitException.In(exception))
        {
            return false; // the gateway's own limit, not the destination's
        }

        for (var ex = exception; ex is not null; ex = ex.InnerException)
        {
            if (ex is IOException or System.Net.Sockets.SocketException or TimeoutException or OperationCanceledException
                || ex is HttpRequestException { HttpRequestError: not (HttpRequestError.Unknown or HttpRequestError.ConfigurationLimitExceeded or HttpRequestError.UserAuthenticationError or HttpRequestError.ProxyTunnelError) })
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// A request that waited for a new HTTP/2 connection to a destination that closed or reset it before completing the
    /// HTTP/2 handshake: no stream was opened, so nothing was sent, as when the connection is refused. SocketsHttpHandler
    /// gives the request that opened the connection the handshake's error (an <see cref="HttpIOException"/>: a transport
    /// error), and every other request that waited for it this one, with no inner exception and
    /// <see cref="HttpRequestError.Unknown"/>, so that only its message tells it from a request the gateway could not send
    /// (a header value HttpClient cannot encode). Seen as 502s that were never retried: 2 of 80 requests to an HTTP/2
    /// destination that resets every new connection, and WebSocket handshakes to one under CPU load. Where the runtime's
    /// messages are not English this is not recognised, and such a request is answered 502 as before.
    /// </summary>
    internal static bool IsHttp2HandshakeNotCompleted(Exception exception)
        => exception is HttpRequestException { HttpRequestError: HttpRequestError.Unknown, InnerException: null } http
            && http.Message.StartsWith("An HTTP/2 connection could not be established", StringComparison.Ordinal);

    // SocketsHttpHandler: "A connection could not be established within the configured ConnectTimeout."
    private static bool IsConnectTimeout(Exception? exception)
    {
        for (var ex = exception; ex is not null; ex = ex.InnerException)
        {
            if (ex is TimeoutException && ex.Message.Contains("ConnectTimeout", StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    public void Dispose()
    {
        _tryTimeout?.Dispose();
        _tryTimer?.Dispose();
    }

    // Back to the state of a new attempt, holding nothing of the request.
    private void Reset()
    {
        Dispose();
        _tryTimeout = null;
        _tryTimer = null;
        _failed?.Clear();
        _requestAborted = default;
        _endState = 0;
        _requestEnd = null;
        _lease = null;
        _started = 0;
        Context = null!;
        Proxy = null!;
        Settings = null!;
        Budget = null!;
        RetryUnsent = false;
        Repeatable = false;
        Number = 0;
        RetryReserved = false;
        LastFailure = AttemptFailure.None;
        TimeoutKind = null;
        Candidates = [];
    }

    /// <summary>
    /// The pool's policy: an attempt given back is reset. Only requests whose end the attempt did give theirs back
    /// (<see cref="EndRequest"/>), from the retry middleware's frame as it ends, after removing it from the request's features.
    /// </summary>
    internal sealed class Policy(ResilienceMetrics metrics) : IPooledObjectPolicy<RetryAttempt>
    {
        public RetryAttempt Create() => new(metrics);

        public bool Return(RetryAttempt attempt)
        {
            attempt.Reset();
            return true;
        }
    }

    internal static bool HasBody(HttpContext context)
        => context.Request.ContentLength > 0 || context.Request.Headers.TransferEncoding.Count > 0;
}
