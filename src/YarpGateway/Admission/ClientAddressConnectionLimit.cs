using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using YarpGateway.Configuration;
using YarpGateway.Endpoints;
using YarpGateway.Telemetry;

namespace YarpGateway.Admission;

/// <summary>
/// <see cref="ConnectionAdmissionOptions.MaxPerClientAddress"/>: the proxy connections each client address holds open,
/// counted from when connection admission has let the connection in (its first bytes) and, with the PROXY protocol,
/// once its header named the client; a connection past the limit is closed at once, counted as
/// <c>client_address_limit</c> and logged at most once a second. One source opening connections as fast as it can (a
/// flood, a client in a reconnect loop, a WebSocket hoarder) then holds at most that many, not the whole pod. The limit
/// is read per connection (a reload applies to new ones); off, a connection costs one read of it.
/// </summary>
internal sealed partial class ClientAddressConnectionLimit(ReloadableOptions<AdmissionOptions> options, AdmissionMetrics metrics, TimeProvider timeProvider,
    ILogger<ClientAddressConnectionLimit> logger) : IProxyConnectionMiddleware
{
    internal const string Reason = "client_address_limit";

    private readonly CountsByKey _open = new();
    private readonly LogThrottle _throttle = new(timeProvider, logger);

    /// <summary>Client addresses holding a connection now (tests).</summary>
    internal int Addresses => _open.Keys;

    public ConnectionDelegate Wrap(ConnectionDelegate next, KestrelServerLimits limits) => connection =>
    {
        var max = options.Current.Connections.MaxPerClientAddress;
        if (max <= 0 || connection.RemoteEndPoint is not IPEndPoint peer)
        {
            return next(connection);
        }

        var key = ClientEndPoint.Key(peer.Address);
        if (!_open.TryAdd(key, max, out _))
        {
            metrics.ClientAddressLimited();
            if (_throttle.ShouldLog(Reason, out var suppressed, LogLevel.Warning))
            {
                Log.LimitReached(logger, key, max, suppressed);
            }

            connection.Abort(new ConnectionAbortedException($"Connection admission: {Reason}."));
            return Task.CompletedTask;
        }

        return RunAsync(connection, next, key);
    };

    private async Task RunAsync(ConnectionContext connection, ConnectionDelegate next, string key)
    {
        try
        {
            await next(connection);
        }
        finally
        {
            _open.Remove(key); // the address's entry goes with its last connection
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "Closed a new connection from {Client}: it holds {Limit} open proxy connections, Gateway:Admission:Connections:MaxPerClientAddress ({Suppressed} more since the last line).", EventName = "ClientAddressConnectionLimitReached")]
        public static partial void LimitReached(ILogger logger, string client, int limit, long suppressed);
    }
}
