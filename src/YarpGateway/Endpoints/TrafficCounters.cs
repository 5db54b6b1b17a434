using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using YarpGateway.Telemetry;

namespace YarpGateway.Endpoints;

/// <summary>
/// What is open on the proxy endpoint right now (connections, requests in flight, upgraded
/// connections) and how many connections were accepted and closed in all. The drain logs these at
/// each phase; the metrics export them as churn and gauges.
/// <para>
/// Nothing here outlives a connection's transport. Kestrel can give up on a connection without ever
/// completing it (an HTTP/2 client that sends 1,000 HEADERS in one write, reads nothing and leaves:
/// Kestrel aborts it and its processing never ends). Such a connection is let go
/// <see cref="AbandonAfter"/> after its transport closed: it stops being counted, this middleware
/// returns, so Kestrel frees its <c>MaxConcurrentConnections</c> slot and shutdown stops waiting for
/// it, and nothing of ours keeps its objects alive.
/// </para>
/// </summary>
internal sealed partial class TrafficCounters(TimeProvider timeProvider, Microsoft.Extensions.Options.IOptions<Http2Options> http2, ILogger<TrafficCounters> logger) : IProxyConnectionMiddleware
{
    /// <summary>How long a connection whose transport has closed may take to complete before it is let go.</summary>
    internal static readonly TimeSpan AbandonAfter = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<string, OpenConnection> _open = new(StringComparer.Ordinal);
    private readonly LogThrottle _throttle = new(timeProvider, logger);
    private long _openConnections;
    private long _acceptedConnections;
    private long _closedConnections;
    private long _abandonedConnections;
    private long _resetFloods;
    private long _inFlightRequests;
    private long _upgraded;

    public long OpenConnections => Interlocked.Read(ref _openConnections);

    public long AcceptedConnections => Interlocked.Read(ref _acceptedConnections);

    public long ClosedConnections => Interlocked.Read(ref _closedConnections);

    /// <summary>Connections let go because Kestrel did not complete them after their transport closed.</summary>
    public long AbandonedConnections => Interlocked.Read(ref _abandonedConnections);

    /// <summary>HTTP/2 connections closed for having more than <see cref="Http2Options.MaxStreamResets"/> streams reset (rapid reset, MadeYouReset).</summary>
    public long ResetFloodsClosed => Interlocked.Read(ref _resetFloods);

    public long InFlightRequests => Interlocked.Read(ref _inFlightRequests);

    public long UpgradedConnections => Interlocked.Read(ref _upgraded);

    /// <summary>The proxy connections open now.</summary>
    public IEnumerable<ConnectionContext> Open => _open.Values.Select(static open => open.Connection);

    public ConnectionDelegate Wrap(ConnectionDelegate next, KestrelServerLimits limits) => async connection =>
    {
        Interlocked.Increment(ref _acceptedConnections);
        Interlocked.Increment(ref _openConnections);
        _open[connection.ConnectionId] = new OpenConnection(connection);
        try
        {
            var running = next(connection);
            if (!running.IsCompleted)
            {
                using var watch = new TransportWatch(connection, timeProvider);
                if (await Task.WhenAny(running, watch.Abandoned) != running)
                {
                    Abandoned(connection);
                    return;
                }
            }

            await running;
        }
        finally
        {
            _open.TryRemove(connection.ConnectionId, out _);
            Interlocked.Decrement(ref _openConnections);
            Interlocked.Increment(ref _closedConnections);
        }
    };

    private void Abandoned(ConnectionContext connection)
    {
        Interlocked.Increment(ref _abandonedConnections);
        if (_throttle.ShouldLog("abandoned", out var suppressed))
        {
            Log.Abandoned(logger, connection.ConnectionId, AbandonAfter, suppressed);
        }
    }

    /// <summary>Aborts every open proxy connection (a forced shutdown); returns how many.</summary>
    public int AbortAll()
    {
        var count = 0;
        foreach (var open in _open.Values)
        {
            open.Connection.Abort(new ConnectionAbortedException("The gateway is shutting down (forced)."));
            count++;
        }

        return count;
    }

    /// <summary>A request on the proxy endpoint (and, for an upgrade, its upgraded connection) begins; <see cref="ProxyRequestFrame"/> calls it.</summary>
    public void RequestStarted(bool upgrade)
    {
        Interlocked.Increment(ref _inFlightRequests);
        if (upgrade)
        {
            Interlocked.Increment(ref _upgraded);
        }
    }

    /// <summary>The request counted by <see cref="RequestStarted"/> has ended.</summary>
    public void RequestEnded(HttpContext context, bool upgrade)
    {
        Interlocked.Decrement(ref _inFlightRequests);
        if (upgrade)
        {
            Interlocked.Decrement(ref _upgraded);
        }

        if (context.RequestAborted.IsCancellationRequested && !GrpcAnswerReset.WasResetAfterAnswer(context))
        {
            StreamAborted(context);
        }
    }

    // A request whose client went away: on HTTP/2, one reset stream of its connection.
    private void StreamAborted(HttpContext context)
    {
        if (!HttpProtocol.IsHttp2(context.Request.Protocol) || !_open.TryGetValue(context.Connection.Id, out var open))
        {
            return;
        }

        var resets = open.Resets ??= new StreamResetCounter();
        if (resets.AddAndCheck(http2.Value, timeProvider))
        {
            Interlocked.Increment(ref _resetFloods);
            if (_throttle.ShouldLog("reset_flood", out var suppressed))
            {
                Log.ResetFlood(logger, open.Connection.ConnectionId, http2.Value.MaxStreamResets, http2.Value.StreamResetWindow, suppressed);
            }

            open.Connection.Abort(new ConnectionAbortedException("The client reset too many HTTP/2 streams."));
        }
    }

    private sealed class OpenConnection(ConnectionContext connection)
    {
        public ConnectionContext Connection { get; } = connection;

        /// <summary>Set on the first stream reset (HTTP/2 only).</summary>
        public StreamResetCounter? Resets { get; set; }
    }

    /// <summary>Completes <see cref="Abandoned"/> <see cref="AbandonAfter"/> after the connection's transport closed. The timer exists only once it has.</summary>
    private sealed class TransportWatch : IDisposable
    {
        private readonly TaskCompletionSource _abandoned = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TimeProvider _timeProvider;
        private readonly CancellationTokenRegistration _registration;
        private ITimer? _timer;
        private int _disposed;

        public TransportWatch(ConnectionContext connection, TimeProvider timeProvider)
        {
            _timeProvider = timeProvider;
            _registration = connection.ConnectionClosed.UnsafeRegister(static state => ((TransportWatch)state!).TransportClosed(), this);
        }

        public Task Abandoned => _abandoned.Task;

        private void TransportClosed()
        {
            var timer = _timeProvider.CreateTimer(static state => ((TransportWatch)state!)._abandoned.TrySetResult(), this, AbandonAfter, Timeout.InfiniteTimeSpan);
            if (Interlocked.CompareExchange(ref _timer, timer, null) is not null || Volatile.Read(ref _disposed) == 1)
            {
                timer.Dispose();
            }
        }

        public void Dispose()
        {
            Volatile.Write(ref _disposed, 1);
            _registration.Dispose();
            Interlocked.Exchange(ref _timer, null)?.Dispose();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "Connection {ConnectionId} was not completed by Kestrel within {AbandonAfter} of its transport closing (typically an HTTP/2 client that flooded streams and left); it is no longer counted and its connection slot is free. {Suppressed} more like it in the last second.", EventName = "ConnectionAbandoned")]
        public static partial void Abandoned(ILogger logger, string connectionId, TimeSpan abandonAfter, long suppressed);

        [LoggerMessage(2, LogLevel.Warning, "Connection {ConnectionId} closed: more than {MaxStreamResets} of its HTTP/2 streams were reset within {Window}, by the client or for frames the gateway had to refuse (rapid reset; Gateway:Http2:MaxStreamResets). {Suppressed} more like it in the last second.", EventName = "StreamResetFlood")]
        public static partial void ResetFlood(ILogger logger, string connectionId, int maxStreamResets, TimeSpan window, long suppressed);
    }
}
