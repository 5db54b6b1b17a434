using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using YarpGateway.Endpoints;

namespace YarpGateway.Admission;

/// <summary>
/// Kestrel's socket transport, with the proxy endpoint's accept paced by connection admission's rate
/// (<see cref="ConnectionAdmissionOptions.PaceAccept"/>): before each accept the listener takes a
/// token, or a place in the accept window (<see cref="ConnectionAdmissionOptions.AcceptWindow"/>), and while
/// there is neither it accepts nothing, so a storm's connections wait in the kernel's
/// listen queue instead of each being set up (socket, pipes, Kestrel's connection, the middleware
/// up to admission) only to wait in the gateway. As HAProxy's <c>rate-limit sessions</c> does. When
/// the listen queue is nearly full, connections are taken in without a token and wait for it in the
/// gateway, so that the kernel does not drop handshakes. Before either, there must be room under the
/// open connections' limit (<see cref="OpenConnectionLimit"/>), which is never exceeded, and the GC heap
/// under <see cref="Memory.MemoryPressure"/>'s threshold. Other
/// listeners (management) are the transport's own.
/// </summary>
internal sealed partial class PacedAcceptListenerFactory(SocketTransportFactory inner, ConnectionAdmission admission, OpenConnectionLimit openLimit, Memory.MemoryPressure memory, GatewayListeners listeners, ProxyListenQueue listenQueue, ILogger<PacedAcceptListenerFactory> logger)
    : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    private static readonly object PacedKey = new();
    private readonly Func<bool> _queueNearlyFull = () => NearlyFull(listenQueue.Read());

    /// <summary>
    /// Three quarters of the listen queue in use: paced accept takes connections in without a token
    /// until it is below again, and they wait for their token in the gateway (as with
    /// <c>PaceAccept=false</c>), rather than have the kernel drop new clients' handshakes.
    /// </summary>
    internal static bool NearlyFull((long Waiting, long Capacity) queue) => queue.Capacity > 0 && queue.Waiting * 4 >= queue.Capacity * 3;

    public bool CanBind(EndPoint endpoint) => inner.CanBind(endpoint);

    public async ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var proxy = listeners.IsProxy(endpoint);
        var listener = await inner.BindAsync(endpoint, cancellationToken);
        if (!proxy)
        {
            return listener;
        }

        Log.Paced(logger, listener.EndPoint);
        return new PacedListener(listener, admission, openLimit, memory, _queueNearlyFull);
    }

    /// <summary>
    /// Whether the connection took its token of the connection rate (or a place in the accept window) before it was
    /// accepted, and the window's place if it took one; that is then the caller's to give back.
    /// </summary>
    public static (bool Paced, AcceptWindowSlot? Slot) TakePacing(ConnectionContext connection)
        => connection.Items.Remove(PacedKey, out var slot) ? (true, slot as AcceptWindowSlot) : (false, null);

    private sealed class PacedListener(IConnectionListener inner, ConnectionAdmission admission, OpenConnectionLimit openLimit, Memory.MemoryPressure memory, Func<bool> queueNearlyFull) : IConnectionListener
    {
        private readonly CancellationTokenSource _unbound = new();

        public EndPoint EndPoint => inner.EndPoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            bool paced;
            AcceptWindowSlot? slot;
            var room = false;
            try
            {
                using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _unbound.Token);
                await openLimit.WaitForRoomAsync(stop.Token);
                room = true;
                await memory.WaitUntilEasedAsync(stop.Token); // the GC heap near the runtime's limit: new clients wait
                (paced, slot) = await admission.PaceAcceptAsync(queueNearlyFull, stop.Token);
            }
            catch (Exception ex)
            {
                if (room)
                {
                    openLimit.Return();
                }

                if (ex is OperationCanceledException)
                {
                    return null; // unbound: Kestrel's accept loop ends, as when the socket's accept stops
                }

                throw;
            }

            ConnectionContext? connection;
            try
            {
                connection = await inner.AcceptAsync(cancellationToken);
            }
            catch
            {
                openLimit.Return();
                slot?.Release();
                throw;
            }

            if (connection is null)
            {
                openLimit.Return();
                slot?.Release();
                return null;
            }

            openLimit.Track(connection);
            if (paced)
            {
                connection.Items[PacedKey] = slot; // connection admission takes it (TakePacing)
            }

            return connection;
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            _unbound.Cancel();
            return inner.UnbindAsync(cancellationToken);
        }

        public async ValueTask DisposeAsync()
        {
            await inner.DisposeAsync();
            _unbound.Dispose();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Debug, "Accepts on {EndPoint} are paced by connection admission's rate.", EventName = "AcceptPaced")]
        public static partial void Paced(ILogger logger, EndPoint endPoint);
    }
}
