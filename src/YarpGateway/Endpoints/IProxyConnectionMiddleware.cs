using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace YarpGateway.Endpoints;

/// <summary>
/// Connection middleware a feature adds to the Proxy endpoint (never the Management one). They run
/// in registration order, before the connection is tagged and before h2c sniffing (and TLS). One that reads
/// the connection's bytes must leave them unconsumed and unexamined (connection admission waits for
/// the first bytes that way), except the PROXY protocol reader, last, which consumes its header and
/// nothing after it.
/// </summary>
internal interface IProxyConnectionMiddleware
{
    /// <summary>The middleware around <paramref name="next"/>; <paramref name="limits"/> are the server's (read them per connection: they are final only once Kestrel starts).</summary>
    ConnectionDelegate Wrap(ConnectionDelegate next, KestrelServerLimits limits);
}
