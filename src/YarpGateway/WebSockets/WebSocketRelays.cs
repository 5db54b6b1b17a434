using System.Collections.Concurrent;
using YarpGateway.Configuration;
using YarpGateway.Health;
using YarpGateway.Telemetry;

namespace YarpGateway.WebSockets;

/// <summary>
/// Every relayed WebSocket: reports drops and evictions, closes those idle for their cluster's
/// activity timeout (one sweep a second over all of them, rather than a timer per connection), and
/// during a drain closes them all with 1001, spread over <see cref="WebSocketProxyOptions.CloseWindow"/>
/// in random order so that clients do not reconnect to the other replicas in the same instant.
/// </summary>
internal sealed partial class WebSocketRelays(
    ReloadableOptions<WebSocketProxyOptions> options,
    ReloadableOptions<ShutdownOptions> shutdown,
    RequestId requestIds,
    WebSocketCounters counters,
    WebSocketMetrics metrics,
    Resilience.PassiveHealthReporter passiveHealth,
    TimeProvider timeProvider,
    ILogger<WebSocketRelays> logger) : IWebSocketRelayHost, IDrainParticipant, IDisposable
{
    private readonly ConcurrentDictionary<WebSocketRelay, byte> _open = new();
    private readonly CancellationTokenSource _disposed = new(); // cancelled, never disposed: a spread in progress still holds its token
    private readonly LogThrottle _throttle = new(timeProvider, logger);
    private volatile bool _draining;
    private int _disposeCount;
    private ITimer? _idleSweep;

    /// <summary>How often open WebSockets are checked for their activity timeout.</summary>
    internal static readonly TimeSpan IdleSweepInterval = TimeSpan.FromSeconds(1);

    public int Count => _open.Count;

    /// <summary>A snapshot of the open relays (for tests and diagnostics).</summary>
    public IReadOnlyCollection<WebSocketRelay> Open => _open.Keys.ToArray();

    public void Register(WebSocketRelay relay)
    {
        if (_open.TryAdd(relay, 0))
        {
            counters.Opened();
            metrics.RouteOpened(relay.RouteId);
        }

        if (_idleSweep is null)
        {
            StartIdleSweep();
        }

        if (_draining)
        {
            relay.RequestClose(CloseFrame.GoingAway, EvictionReason.Drain, "gateway restarting");
        }
    }

    public void Unregister(WebSocketRelay relay)
    {
        if (_open.TryRemove(relay, out _))
        {
            counters.Closed();
        }
    }

    public string RequestIdHeader => requestIds.Header;

    public void Dropped(WebSocketRelay relay, int messages, long bytes) => metrics.Dropped(relay.RouteId, messages, bytes);

    public void Evicted(WebSocketRelay relay, EvictionReason reason, ushort code, string detail)
    {
        metrics.Evicted(relay.RouteId, reason);
        if (reason != EvictionReason.Drain && _throttle.ShouldLog("websocket." + reason.ToTag(), out var suppressed))
        {
            Log.Evicted(logger, relay.RouteId, relay.RequestId, reason.ToTag(), code, detail, suppressed);
        }
    }

    /// <summary>
    /// Once per relayed WebSocket, with the copy's outcome (the backend's connection reset, say), as YARP's passive
    /// health middleware saw it when it waited for YARP's copy; the retries left the handshake's to this.
    /// </summary>
    public void CopyEnded(HttpContext context) => passiveHealth.Report(context, context.GetReverseProxyFeature());

    /// <summary>Starts the spread 1001 closes and returns; Kestrel's stop then waits for the connections to end.</summary>
    public Task DrainAsync(CancellationToken cancellationToken)
    {
        _draining = true;
        var relays = _open.Keys.ToArray();
        Random.Shared.Shuffle(relays);
        var window = options.Current.CloseWindow;

        // The closes must finish (client's answer included) before the shutdown timeout cuts connections off.
        var latest = shutdown.Current.Timeout - options.Current.CloseTimeout;
        if (window > latest)
        {
            var shortened = latest > TimeSpan.Zero ? latest : TimeSpan.Zero;
            Log.WindowShortened(logger, window, shortened, shutdown.Current.Timeout);
            window = shortened;
        }

        Log.Closing(logger, relays.Length, window);
        if (relays.Length > 0)
        {
            Spreading = SpreadAsync(relays, window, _disposed.Token);
        }

        return Task.CompletedTask;
    }

    /// <summary>The 1001 closes being spread, for tests; completes when the last is sent or the relays are disposed.</summary>
    internal Task Spreading { get; private set; } = Task.CompletedTask;

    private async Task SpreadAsync(WebSocketRelay[] relays, TimeSpan window, CancellationToken disposed)
    {
        var start = timeProvider.GetTimestamp();
        try
        {
            for (var i = 0; i < relays.Length; i++)
            {
                var wait = (window * i / relays.Length) - timeProvider.GetElapsedTime(start);
                if (wait > TimeSpan.FromMilliseconds(1))
                {
                    await Task.Delay(wait, timeProvider, disposed);
                }

                relays[i].RequestClose(CloseFrame.GoingAway, EvictionReason.Drain, "gateway restarting");
            }

            Log.Closed(logger, relays.Length, timeProvider.GetElapsedTime(start));
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void StartIdleSweep()
    {
        var sweep = timeProvider.CreateTimer(static state => ((WebSocketRelays)state!).SweepIdle(), this, IdleSweepInterval, IdleSweepInterval);
        if (Interlocked.CompareExchange(ref _idleSweep, sweep, null) is not null || Volatile.Read(ref _disposeCount) != 0)
        {
            sweep.Dispose(); // another registration started it first, or this host is being disposed
        }
    }

    private void SweepIdle()
    {
        // Enumerated in place: Keys would take every lock of the dictionary and copy it, a large-object array a second
        // at 100,000 WebSockets.
        var now = timeProvider.GetTimestamp();
        foreach (var (relay, _) in _open)
        {
            relay.CloseIfIdle(now);
        }
    }

    // Registered twice (as itself and as a drain participant), so disposed twice.
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposeCount, 1) == 0)
        {
            _disposed.Cancel();
            Interlocked.Exchange(ref _idleSweep, null)?.Dispose();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "WebSocket on route '{Route}' (request id {RequestId}) closed by the gateway: {Reason} (close code {Code}; 0 = aborted). {Detail}. {Suppressed} more like it in the last second.", EventName = "WebSocketEvicted")]
        public static partial void Evicted(ILogger logger, string route, string requestId, string reason, ushort code, string detail, long suppressed);

        [LoggerMessage(2, LogLevel.Information, "Closing {Count} WebSockets with 1001 (going away), spread over {Window}.", EventName = "WebSocketDrainStarted")]
        public static partial void Closing(ILogger logger, int count, TimeSpan window);

        [LoggerMessage(3, LogLevel.Information, "Started the 1001 close of all {Count} WebSockets in {Elapsed}.", EventName = "WebSocketDrainSent")]
        public static partial void Closed(ILogger logger, int count, TimeSpan elapsed);

        [LoggerMessage(4, LogLevel.Warning, "Gateway:WebSockets:CloseWindow ({Window}) leaves no time for the close handshake within Gateway:Shutdown:Timeout ({Timeout}) minus CloseTimeout; spreading the 1001 closes over {Shortened} instead.", EventName = "WebSocketDrainWindowShortened")]
        public static partial void WindowShortened(ILogger logger, TimeSpan window, TimeSpan shortened, TimeSpan timeout);
    }
}
