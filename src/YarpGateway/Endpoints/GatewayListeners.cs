using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace YarpGateway.Endpoints;

/// <summary>
/// The listen options of the Proxy and Management endpoints (and the optional HttpsRedirect one), captured while Kestrel is configured.
/// After start-up their endpoints carry the bound ports (useful with port 0 and for logging).
/// </summary>
internal sealed class GatewayListeners
{
    private readonly List<ListenOptions> _proxy = [];
    private readonly List<ListenOptions> _management = [];
    private readonly List<ListenOptions> _httpsRedirect = [];

    public void Add(GatewayEndpointKind kind, ListenOptions options)
    {
        var list = kind switch
        {
            GatewayEndpointKind.Proxy => _proxy,
            GatewayEndpointKind.HttpsRedirect => _httpsRedirect,
            _ => _management,
        };
        lock (list)
        {
            list.Add(options);
        }
    }

    public IReadOnlyList<EndPoint> ProxyEndPoints => Snapshot(_proxy);

    public IReadOnlyList<EndPoint> ManagementEndPoints => Snapshot(_management);

    public IReadOnlyList<EndPoint> HttpsRedirectEndPoints => Snapshot(_httpsRedirect);

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

    /// <summary>
    /// Whether Kestrel is binding <paramref name="endpoint"/> for the Proxy endpoint: one of its listen
    /// options' own endpoint, or (Kestrel binds <c>localhost</c> as a copy per loopback address) a
    /// loopback address on the port of a loopback Proxy endpoint. Anything that could be the
    /// Management or HttpsRedirect endpoint's is not.
    /// </summary>
    public bool IsProxy(EndPoint endpoint)
    {
        lock (_proxy)
        {
            lock (_management)
            {
                lock (_httpsRedirect)
                {
                    if (_management.Any(o => Matches(o.EndPoint, endpoint)) || _httpsRedirect.Any(o => Matches(o.EndPoint, endpoint)))
                    {
                        return false;
                    }

                    return _proxy.Any(o => Matches(o.EndPoint, endpoint));
                }
            }
        }

        static bool Matches(EndPoint registered, EndPoint binding)
            => ReferenceEquals(registered, binding)
            || (registered is IPEndPoint { Port: > 0 } a && binding is IPEndPoint b && a.Port == b.Port
                && (a.Address.Equals(b.Address) || (IPAddress.IsLoopback(a.Address) && IPAddress.IsLoopback(b.Address))));
    }

    private static EndPoint[] Snapshot(List<ListenOptions> list)
    {
        lock (list)
        {
            return list.Select(o => o.EndPoint).ToArray();
        }
    }
}
