using Microsoft.AspNetCore.Http.Features;

namespace YarpGateway.WebSockets;

/// <summary>
/// Hands YARP the relay's stream instead of Kestrel's when it upgrades an HTTP/1.1 WebSocket; then puts Kestrel's feature
/// back, so that the request does not keep this one for the WebSocket's life.
/// </summary>
internal sealed class RelayUpgradeFeature(IHttpUpgradeFeature inner, WebSocketRelay relay, IFeatureCollection features) : IHttpUpgradeFeature
{
    public bool IsUpgradableRequest => inner.IsUpgradableRequest;

    public async Task<Stream> UpgradeAsync()
    {
        var client = await inner.UpgradeAsync();
        features.Set(inner);
        return relay.Attach(client);
    }
}

/// <summary>
/// Hands YARP the relay's stream instead of Kestrel's when it accepts an HTTP/2 WebSocket (RFC 8441); then puts Kestrel's
/// feature back, so that the request does not keep this one for the WebSocket's life.
/// </summary>
internal sealed class RelayExtendedConnectFeature(IHttpExtendedConnectFeature inner, WebSocketRelay relay, IFeatureCollection features) : IHttpExtendedConnectFeature
{
    public bool IsExtendedConnect => inner.IsExtendedConnect;

    public string? Protocol => inner.Protocol;

    public async ValueTask<Stream> AcceptAsync()
    {
        var client = await inner.AcceptAsync();
        features.Set(inner);
        return relay.Attach(client);
    }
}
