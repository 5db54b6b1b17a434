using Microsoft.AspNetCore.Http.Features;

namespace YarpGateway.WebSockets;

/// <summary>Hands YARP the relay's stream instead of Kestrel's when it upgrades an HTTP/1.1 WebSocket.</summary>
internal sealed class RelayUpgradeFeature(IHttpUpgradeFeature inner, WebSocketRelay relay) : IHttpUpgradeFeature
{
    public bool IsUpgradableRequest => inner.IsUpgradableRequest;

    public async Task<Stream> UpgradeAsync() => relay.Attach(await inner.UpgradeAsync());
}

/// <summary>Hands YARP the relay's stream instead of Kestrel's when it accepts an HTTP/2 WebSocket (RFC 8441).</summary>
internal sealed class RelayExtendedConnectFeature(IHttpExtendedConnectFeature inner, WebSocketRelay relay) : IHttpExtendedConnectFeature
{
    public bool IsExtendedConnect => inner.IsExtendedConnect;

    public string? Protocol => inner.Protocol;

    public async ValueTask<Stream> AcceptAsync() => relay.Attach(await inner.AcceptAsync());
}
