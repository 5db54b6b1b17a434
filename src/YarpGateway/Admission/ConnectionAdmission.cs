using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Connections;
using YarpGateway.Configuration;
using YarpGateway.Endpoints;
using YarpGateway.Telemetry;

namespace YarpGateway.Admission;

/// <summary>
/// Accept backpressure on the proxy endpoint: a new connection takes a token from a bucket
/// (<see cref="ConnectionAdmissionOptions.RatePerSecond"/>, <see cref="ConnectionAdmissionOptions.Burst"/>)
/// and a slot among the connections still in their first request, waiting (FIFO, at most
/// <see cref="ConnectionAdmissionOptions.MaxWait"/>) when either is exhausted; past the wait it is
/// closed. This is not a cap on open connections: it spreads a reconnect storm over time so the
/// thread pool keeps serving the connections already open. Settings apply to connections that
/// arrive after a reload.
/// </summary>
internal sealed partial class ConnectionAdmission : IProxyConnectionMiddleware, IDisposable
{
    private readonly GatewayMetrics _metrics;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<ConnectionAdmission> _logger;
    private readonly ReloadableOptions<AdmissionOptions> _options;
    private volatile State _state;

    public ConnectionAdmission(ReloadableOptions<AdmissionOptions> options, GatewayMetrics metrics, TimeProvider timeProvider, ILogger<ConnectionAdmission> logger)
    {
        _metrics = metrics;
        _timeProvider = timeProvider;
        _logger = logger;
        _options = options;
        _state = new State(options.Current.Connections, timeProvider);
        options.Changed += OnOptionsChanged;
    }

    /// <summary>Connections waiting for a token or a first-request slot (for tests and diagnostics).</summary>
    internal long Waiting
    {
        get
        {
            var state = _state;
            return (state.Rate?.GetStatistics()?.CurrentQueuedCount ?? 0) + (state.FirstRequest?.GetStatistics()?.CurrentQueuedCount ?? 0);
        }
    }

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
        var next = new State(options.Connections, _timeProvider);
        if (next.Options != _state.Options)
        {
            _state = next; // the old limiters serve only connections already waiting on them
        }
        else
        {
            next.Dispose();
        }
    }

    public ConnectionDelegate Wrap(ConnectionDelegate next) => connection => OnConnectionAsync(connection, next);

    private async Task OnConnectionAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        var state = _state;
        if (state.Rate is null && state.FirstRequest is null)
        {
            await next(connection);
            return;
        }

        var started = _timeProvider.GetTimestamp();
        RateLimitLease? slot = null;
        var delayed = false;
        try
        {
            using var deadline = new CancellationTokenSource(state.Options.MaxWait, _timeProvider);
            using var cancel = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, connection.ConnectionClosed);
            if (state.Rate is { } rate)
            {
                (var token, delayed) = await AcquireAsync(rate, cancel.Token);
                token.Dispose(); // a token bucket's lease holds nothing
                if (!token.IsAcquired)
                {
                    Close(connection, "queue_full", started);
                    return;
                }
            }

            if (state.FirstRequest is { } firstRequest)
            {
                (slot, var waited) = await AcquireAsync(firstRequest, cancel.Token);
                delayed |= waited;
                if (!slot.IsAcquired)
                {
                    slot.Dispose();
                    Close(connection, "queue_full", started);
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            slot?.Dispose();
            Close(connection, connection.ConnectionClosed.IsCancellationRequested ? "client_gone" : "wait_timeout", started);
            return;
        }

        if (delayed)
        {
            _metrics.ConnectionDelayed(_timeProvider.GetElapsedTime(started));
        }

        var gate = slot is null ? null : new FirstRequestGate(slot);
        gate?.AttachTo(connection.Items);
        try
        {
            await next(connection);
        }
        finally
        {
            gate?.Release();
        }
    }

    private static async ValueTask<(RateLimitLease Lease, bool Waited)> AcquireAsync(RateLimiter limiter, CancellationToken cancellationToken)
    {
        var lease = limiter.AttemptAcquire(1);
        if (lease.IsAcquired)
        {
            return (lease, false);
        }

        lease.Dispose();
        return (await limiter.AcquireAsync(1, cancellationToken), true);
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
    }

    private sealed class State : IDisposable
    {
        public State(ConnectionAdmissionOptions options, TimeProvider timeProvider)
        {
            Options = new Settings(options.RatePerSecond, options.Burst, options.MaxFirstRequestConnections, options.MaxWait, options.MaxWaiting);
            _bucket = options.RatePerSecond > 0 && options.Burst > 0 ? new TokenBucket(options.RatePerSecond, options.Burst, options.MaxWaiting, timeProvider) : null;
            FirstRequest = options.MaxFirstRequestConnections > 0
                ? new ConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = options.MaxFirstRequestConnections, QueueLimit = options.MaxWaiting, QueueProcessingOrder = QueueProcessingOrder.OldestFirst })
                : null;
        }

        public Settings Options { get; }

        private readonly TokenBucket? _bucket;

        public TokenBucketRateLimiter? Rate => _bucket?.Limiter;

        public ConcurrencyLimiter? FirstRequest { get; }

        public void Dispose()
        {
            _bucket?.Dispose();
            FirstRequest?.Dispose();
        }
    }

    private sealed record Settings(int RatePerSecond, int Burst, int MaxFirstRequestConnections, TimeSpan MaxWait, int MaxWaiting);

    private static partial class Log
    {
        // Debug: in a storm this fires per connection; the counters carry the totals.
        [LoggerMessage(1, LogLevel.Debug, "Connection {ConnectionId} closed by connection admission: {Reason}.", EventName = "ConnectionAdmissionClosed")]
        public static partial void Closed(ILogger logger, string connectionId, string reason);
    }
}
