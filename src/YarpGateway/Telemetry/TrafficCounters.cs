using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using YarpGateway.Endpoints;

namespace YarpGateway.Telemetry;

/// <summary>
/// What is open on the proxy endpoint right now (connections, requests in flight, upgraded
/// connections) and how many connections were accepted and closed in all. The drain logs these at
/// each phase; the metrics issue exports them as churn and gauges.
/// </summary>
internal sealed class TrafficCounters : IProxyConnectionMiddleware
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ConnectionContext> _open = new(StringComparer.Ordinal);
    private long _openConnections;
    private long _acceptedConnections;
    private long _closedConnections;
    private long _inFlightRequests;
    private long _upgraded;

    public long OpenConnections => Interlocked.Read(ref _openConnections);

    public long AcceptedConnections => Interlocked.Read(ref _acceptedConnections);

    public long ClosedConnections => Interlocked.Read(ref _closedConnections);

    public long InFlightRequests => Interlocked.Read(ref _inFlightRequests);

    public long UpgradedConnections => Interlocked.Read(ref _upgraded);

    public ConnectionDelegate Wrap(ConnectionDelegate next, KestrelServerLimits limits) => async connection =>
    {
        Interlocked.Increment(ref _acceptedConnections);
        Interlocked.Increment(ref _openConnections);
        _open[connection.ConnectionId] = connection;
        try
        {
            await next(connection);
        }
        finally
        {
            _open.TryRemove(connection.ConnectionId, out _);
            Interlocked.Decrement(ref _openConnections);
            Interlocked.Increment(ref _closedConnections);
        }
    };

    /// <summary>The proxy connections open now.</summary>
    public IEnumerable<ConnectionContext> Open => _open.Values;

    /// <summary>Aborts every open proxy connection (a forced shutdown); returns how many.</summary>
    public int AbortAll()
    {
        var count = 0;
        foreach (var connection in _open.Values)
        {
            connection.Abort(new ConnectionAbortedException("The gateway is shutting down (forced)."));
            count++;
        }

        return count;
    }

    /// <summary>Counts a proxied request (and, for an upgrade, the upgraded connection) for its lifetime.</summary>
    public async Task CountAsync(HttpContext context, RequestDelegate next)
    {
        var upgrade = Admission.RequestAdmission.IsUpgrade(context);
        Interlocked.Increment(ref _inFlightRequests);
        if (upgrade)
        {
            Interlocked.Increment(ref _upgraded);
        }

        try
        {
            await next(context);
        }
        finally
        {
            Interlocked.Decrement(ref _inFlightRequests);
            if (upgrade)
            {
                Interlocked.Decrement(ref _upgraded);
            }
        }
    }
}
