using Microsoft.AspNetCore.Connections;

namespace YarpGateway.Endpoints;

/// <summary>
/// Connection middleware a feature adds to the Proxy endpoint (never the Management one). They run
/// in registration order, before the connection is tagged and before h2c sniffing reads a byte.
/// </summary>
internal interface IProxyConnectionMiddleware
{
    ConnectionDelegate Wrap(ConnectionDelegate next);
}
