using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace YarpGateway.Endpoints;

/// <summary>
/// The listen options of the Proxy and Management endpoints, captured while Kestrel is configured.
/// After start-up their endpoints carry the bound ports (useful with port 0 and for logging).
/// </summary>
internal sealed class GatewayListeners
{
    private readonly List<ListenOptions> _proxy = [];
    private readonly List<ListenOptions> _management = [];

    public void Add(GatewayEndpointKind kind, ListenOptions options)
    {
        var list = kind == GatewayEndpointKind.Proxy ? _proxy : _management;
        lock (list)
        {
            list.Add(options);
        }
    }

    public IReadOnlyList<EndPoint> ProxyEndPoints => Snapshot(_proxy);

    public IReadOnlyList<EndPoint> ManagementEndPoints => Snapshot(_management);

    /// <summary>The HTTP versions each Proxy listener serves, as Kestrel binds them.</summary>
    public IReadOnlyList<HttpProtocols> ProxyProtocols
    {
        get
        {
            lock (_proxy)
            {
                return _proxy.Select(o => o.Protocols).ToArray();
            }
        }
    }

    private static EndPoint[] Snapshot(List<ListenOptions> list)
    {
        lock (list)
        {
            return list.Select(o => o.EndPoint).ToArray();
        }
    }
}
