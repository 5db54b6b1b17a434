using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using YarpGateway.Endpoints;

namespace YarpGateway.Tests.Endpoints;

public class GatewayListenersTests
{
    private static ListenOptions Listen(Action<KestrelServerOptions, Action<ListenOptions>> listen)
    {
        ListenOptions? captured = null;
        listen(new KestrelServerOptions(), o => captured = o);
        return captured!;
    }

    [Fact]
    public void IsProxy_TheProxysOwnEndpoint_AndKestrelsLoopbackCopiesOfLocalhost_NeverTheManagements()
    {
        var listeners = new GatewayListeners();
        var proxy = Listen((k, c) => k.ListenLocalhost(8080, c));
        var management = Listen((k, c) => k.Listen(IPAddress.Loopback, 8081, c));
        listeners.Add(GatewayEndpointKind.Proxy, proxy);
        listeners.Add(GatewayEndpointKind.Management, management);

        Assert.True(listeners.IsProxy(proxy.EndPoint));
        Assert.True(listeners.IsProxy(new IPEndPoint(IPAddress.Loopback, 8080)));
        Assert.True(listeners.IsProxy(new IPEndPoint(IPAddress.IPv6Loopback, 8080))); // localhost binds both
        Assert.False(listeners.IsProxy(management.EndPoint));
        Assert.False(listeners.IsProxy(new IPEndPoint(IPAddress.Loopback, 8081)));
        Assert.False(listeners.IsProxy(new IPEndPoint(IPAddress.Parse("10.0.0.1"), 8080)));
    }

    [Fact]
    public void IsProxy_PortZero_MatchesOnlyByReference()
    {
        var listeners = new GatewayListeners();
        var proxy = Listen((k, c) => k.Listen(IPAddress.Loopback, 0, c));
        var management = Listen((k, c) => k.Listen(IPAddress.Loopback, 0, c));
        listeners.Add(GatewayEndpointKind.Proxy, proxy);
        listeners.Add(GatewayEndpointKind.Management, management);

        Assert.True(listeners.IsProxy(proxy.EndPoint));
        Assert.False(listeners.IsProxy(management.EndPoint));
        Assert.False(listeners.IsProxy(new IPEndPoint(IPAddress.Loopback, 0)));
    }

    [Fact]
    public void IsProxy_ASharedPortOnLoopback_IsNotPaced()
    {
        // A management endpoint that could be the same socket wins: health probes are never paced.
        var listeners = new GatewayListeners();
        listeners.Add(GatewayEndpointKind.Proxy, Listen((k, c) => k.Listen(IPAddress.Loopback, 9000, c)));
        listeners.Add(GatewayEndpointKind.Management, Listen((k, c) => k.Listen(IPAddress.IPv6Loopback, 9000, c)));

        Assert.False(listeners.IsProxy(new IPEndPoint(IPAddress.Loopback, 9000)));
    }
}
