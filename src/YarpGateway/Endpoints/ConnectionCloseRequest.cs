using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace YarpGateway.Endpoints;

/// <summary>
/// Kestrel's request that a connection close, made to every connection at graceful shutdown. Kestrel's
/// HTTP layer honours it between requests; connection middleware that waits before that layer (for
/// a first byte, for admission) must honour it too, or a single idle connection holds shutdown for
/// the whole shutdown timeout (30 s, measured).
/// </summary>
internal static class ConnectionCloseRequest
{
    public static CancellationToken Token(ConnectionContext connection)
        => connection.Features.Get<IConnectionLifetimeNotificationFeature>()?.ConnectionClosedRequested ?? CancellationToken.None;

    /// <summary>Closes a connection that has sent no request yet because the server is shutting down.</summary>
    public static void Abort(ConnectionContext connection)
        => connection.Abort(new ConnectionAbortedException("The server is shutting down and the connection has sent no request yet."));
}
