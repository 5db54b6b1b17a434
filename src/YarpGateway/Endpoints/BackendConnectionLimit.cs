using System.Net;
using System.Net.Sockets;

namespace YarpGateway.Endpoints;

/// <summary>
/// At most <see cref="Limit"/> backend connections open at once: the other share of the open-file limit that
/// <see cref="OpenConnectionLimit"/> gives the proxy connections (what is left after the process's own share and
/// the proxy connections' limit, and never less than theirs). A proxy connection over HTTP/1.1 holds at most one
/// backend connection, but an HTTP/2 client's streams each hold their own when the cluster's backends speak
/// HTTP/1.1: a WebSocket, a server-sent-events or gRPC stream for its life, so 20 clients with 100 streams each
/// needed 2,000 descriptors. Past the open-file limit the runtime ended the process ("Out of memory.") the next
/// time it started a thread, and every connection went with it (tried: an open-file limit of 2,048, HTTP/2
/// clients opening WebSockets). Every backend socket, <c>SocketsHttpHandler</c>'s (through its connect callback)
/// and <see cref="WebSockets.UpgradeConnector"/>'s, is made by <see cref="ConnectAsync"/>; past the limit the request
/// gets 503 with <c>Retry-After</c> at once, is not retried and does not count against the destination. HTTP/2
/// backends carry up to 100 streams on one connection. Read at start.
/// </summary>
internal sealed partial class BackendConnectionLimit
{
    private readonly Telemetry.OncePer _reachedLog;
    private readonly ILogger<BackendConnectionLimit> _logger;
    private int _open;
    private long _refused;

    public BackendConnectionLimit(OpenConnectionLimit proxyConnections, TimeProvider timeProvider, ILogger<BackendConnectionLimit> logger)
        : this(ForBackends(proxyConnections.OpenFileLimit, proxyConnections.Limit), timeProvider, logger)
    {
        if (Limit is { } limit)
        {
            Log.Applied(logger, limit, proxyConnections.OpenFileLimit!.Value);
        }
    }

    internal BackendConnectionLimit(int? limit, TimeProvider timeProvider, ILogger<BackendConnectionLimit> logger)
    {
        Limit = limit;
        _reachedLog = new Telemetry.OncePer(TimeSpan.FromMinutes(1), timeProvider);
        _logger = logger;
    }

    /// <summary>Backend connections allowed at once; null: no limit (no open-file limit known).</summary>
    public int? Limit { get; }

    /// <summary>Backend connections open now (counted with or without a limit).</summary>
    public int Open => Volatile.Read(ref _open);

    /// <summary>Backend connections refused for the limit since start (each a request answered 503).</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>
    /// What the open-file limit leaves for backend connections: the limit less the process's own share and the
    /// proxy connections' limit, and no less than <see cref="OpenConnectionLimit.FromOpenFileLimit"/> (a
    /// <c>MaxOpen</c> set above what the files allow is warned about at start; it does not starve the backends).
    /// </summary>
    internal static int? ForBackends(long? openFileLimit, int? proxyConnections)
    {
        if (openFileLimit is not { } files || OpenConnectionLimit.FromOpenFileLimit(files) is not { } half)
        {
            return null;
        }

        var left = files - OpenConnectionLimit.Reserve(files) - (proxyConnections ?? half);
        return (int)Math.Clamp(Math.Max(left, half), 1, int.MaxValue);
    }

    /// <summary>
    /// Connects a new backend socket counted against the limit, its place given back when it is disposed. Past the
    /// limit: <see cref="BackendConnectionLimitException"/>, before any socket is made.
    /// </summary>
    public async ValueTask<Socket> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken)
    {
        var socket = Take();
        try
        {
            await socket.ConnectAsync(endPoint, cancellationToken);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary><c>SocketsHttpHandler.ConnectCallback</c>: its own default connect, counted.</summary>
    public async ValueTask<Stream> ConnectCallbackAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
        => new NetworkStream(await ConnectAsync(context.DnsEndPoint, cancellationToken), ownsSocket: true);

    private CountedSocket Take()
    {
        var open = Interlocked.Increment(ref _open);
        if (Limit is { } limit && open > limit)
        {
            Interlocked.Decrement(ref _open);
            Interlocked.Increment(ref _refused);
            if (_reachedLog.Now())
            {
                Log.Reached(_logger, limit);
            }

            throw new BackendConnectionLimitException(limit);
        }

        return new CountedSocket(this) { NoDelay = true };
    }

    /// <summary>A backend socket; its place goes back once, when it is disposed.</summary>
    private sealed class CountedSocket(BackendConnectionLimit limit) : Socket(SocketType.Stream, ProtocolType.Tcp)
    {
        private int _released;

        protected override void Dispose(bool disposing)
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                Interlocked.Decrement(ref limit._open);
            }

            base.Dispose(disposing);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Backend connections are limited to {Limit} (what the open-file limit of {OpenFileLimit} leaves after the proxy connections' share); past it a request that needs a new one gets 503.", EventName = "BackendConnectionLimit")]
        public static partial void Applied(ILogger logger, int limit, long openFileLimit);

        [LoggerMessage(2, LogLevel.Warning, "Backend connections reached the limit of {Limit}: requests that need a new one get 503 (said at most once a minute). Each stream of an HTTP/2 client (a WebSocket, a gRPC or server-sent-events stream) holds a backend connection of its own when the cluster's backends speak HTTP/1.1: give the cluster HTTP/2 backends (HttpRequest: Version 2), lower Kestrel:Limits:Http2:MaxStreamsPerConnection, raise the open-file limit, or add replicas.", EventName = "BackendConnectionLimitReached")]
        public static partial void Reached(ILogger logger, int limit);
    }
}

/// <summary>A backend connection was not made: <see cref="BackendConnectionLimit"/> was reached. Not the destination's failure.</summary>
internal sealed class BackendConnectionLimitException(int limit)
    : Exception($"The gateway's limit of {limit} backend connections was reached (the open-file limit's share for them).")
{
    /// <summary>Whether <paramref name="exception"/> or one of its inner exceptions is this.</summary>
    public static bool In(Exception? exception)
    {
        for (var ex = exception; ex is not null; ex = ex.InnerException)
        {
            if (ex is BackendConnectionLimitException)
            {
                return true;
            }
        }

        return false;
    }
}
