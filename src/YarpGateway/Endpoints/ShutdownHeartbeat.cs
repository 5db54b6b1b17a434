using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace YarpGateway.Endpoints;

/// <summary>
/// Keeps HTTP/2 connections' heartbeat going while the server stops. Kestrel's HTTP/2 connection
/// notices that its last stream has ended (and then sends its final GOAWAY and closes) only when
/// something wakes its read loop: a frame from the client or Kestrel's once-a-second heartbeat. The
/// heartbeat stops ticking connections once Kestrel's stop begins (seen with bare Kestrel and YARP as
/// well), so a connection whose last stream ended after that, from a client that then sent nothing,
/// was held until <c>Gateway:Shutdown:Timeout</c> ran out and then reset, holding the pod's exit with
/// it. Each HTTP/2 connection's heartbeat handlers (every connection's, on a TLS endpoint, see
/// <see cref="Middleware"/>) are kept here; from the moment the host begins to
/// stop, a connection that Kestrel has not ticked for <see cref="Stale"/> is ticked from here, once a
/// second, with exactly what Kestrel's heartbeat would call (timeouts and the HTTP/2 read loop's wake).
/// </summary>
internal sealed class ShutdownHeartbeat : IDisposable
{
    /// <summary>How often the connections are ticked while stopping: Kestrel's heartbeat interval.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    /// <summary>A connection Kestrel has not ticked for this long is ticked from here.</summary>
    public static readonly TimeSpan Stale = TimeSpan.FromSeconds(1.5);

    private readonly ConcurrentDictionary<Heartbeat, byte> _connections = new();
    private readonly TimeProvider _timeProvider;
    private readonly CancellationTokenRegistration _stopping;
    private readonly Lock _timerLock = new();
    private ITimer? _timer;
    private bool _disposed;
    private long _ticks;

    public ShutdownHeartbeat(IHostApplicationLifetime lifetime, TimeProvider timeProvider)
    {
        _timeProvider = timeProvider;
        _stopping = lifetime.ApplicationStopping.Register(static state => ((ShutdownHeartbeat)state!).Start(), this);
    }

    /// <summary>How many connection ticks this has made (none until the host stops).</summary>
    public long Ticks => Interlocked.Read(ref _ticks);

    /// <summary>
    /// Connection middleware: connections get a heartbeat feature that forwards to Kestrel's and keeps
    /// the handlers registered with it. On a cleartext endpoint it runs after h2c sniffing and takes
    /// only HTTP/2 connections; on a TLS endpoint it runs before the handshake (Kestrel adds TLS after
    /// the endpoint's own middleware), when the protocol is not known yet, so it takes every one.
    /// </summary>
    /// <param name="everyConnection">True on a TLS endpoint.</param>
    public Func<ConnectionDelegate, ConnectionDelegate> Middleware(bool everyConnection) => next => connection =>
        (everyConnection || Http2PriorKnowledge.IsHttp2(connection)) && connection.Features.Get<IConnectionHeartbeatFeature>() is { } kestrel
            ? RunAsync(next, connection, kestrel)
            : next(connection);

    private async Task RunAsync(ConnectionDelegate next, ConnectionContext connection, IConnectionHeartbeatFeature kestrel)
    {
        var heartbeat = new Heartbeat(kestrel, _timeProvider);
        connection.Features.Set<IConnectionHeartbeatFeature>(heartbeat);
        _connections.TryAdd(heartbeat, 0);

        // Forgotten when the transport closes too: Kestrel does not complete every connection it has
        // given up on (issue 24), and nothing here may keep such a connection reachable.
        using var closed = connection.ConnectionClosed.UnsafeRegister(static state =>
        {
            var (owner, heartbeat) = ((ShutdownHeartbeat, Heartbeat))state!;
            owner._connections.TryRemove(heartbeat, out _);
        }, (this, heartbeat));
        try
        {
            await next(connection);
        }
        finally
        {
            _connections.TryRemove(heartbeat, out _);
        }
    }

    private void Start()
    {
        lock (_timerLock)
        {
            if (!_disposed)
            {
                _timer ??= _timeProvider.CreateTimer(static state => ((ShutdownHeartbeat)state!).Tick(), this, Interval, Interval);
            }
        }
    }

    /// <summary>Ticks each connection Kestrel has stopped ticking.</summary>
    internal void Tick()
    {
        var now = _timeProvider.GetTimestamp();
        foreach (var heartbeat in _connections.Keys)
        {
            if (heartbeat.TickIfStale(now))
            {
                Interlocked.Increment(ref _ticks);
            }
        }
    }

    public void Dispose()
    {
        lock (_timerLock)
        {
            _disposed = true;
            _timer?.Dispose();
        }

        _stopping.Dispose();
    }

    /// <summary>
    /// One connection's heartbeat feature. Kestrel's own heartbeat and the shutdown ticks both run the
    /// handlers under one lock, so a connection is never ticked twice at once.
    /// </summary>
    private sealed class Heartbeat : IConnectionHeartbeatFeature
    {
        private readonly TimeProvider _timeProvider;
        private readonly Lock _lock = new();
        private readonly List<(Action<object> Action, object State)> _handlers = [];
        private long _lastKestrelTick;

        public Heartbeat(IConnectionHeartbeatFeature kestrel, TimeProvider timeProvider)
        {
            _timeProvider = timeProvider;
            _lastKestrelTick = timeProvider.GetTimestamp();

            // Registered here, before any handler, so that Kestrel's lock is never taken inside ours.
            kestrel.OnHeartbeat(static state => ((Heartbeat)state).OnKestrelTick(), this);
        }

        public void OnHeartbeat(Action<object> action, object state)
        {
            lock (_lock)
            {
                _handlers.Add((action, state));
            }
        }

        private void OnKestrelTick()
        {
            lock (_lock)
            {
                _lastKestrelTick = _timeProvider.GetTimestamp();
                RunHandlers();
            }
        }

        public bool TickIfStale(long now)
        {
            lock (_lock)
            {
                if (_handlers.Count == 0 || _timeProvider.GetElapsedTime(_lastKestrelTick, now) < Stale)
                {
                    return false;
                }

                RunHandlers();
                return true;
            }
        }

        private void RunHandlers()
        {
            foreach (var (action, state) in _handlers)
            {
                action(state);
            }
        }
    }
}
