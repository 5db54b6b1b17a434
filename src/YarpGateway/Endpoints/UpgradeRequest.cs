using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Primitives;

namespace YarpGateway.Endpoints;

/// <summary>
/// "Is this an upgrade request" (an HTTP/1.1 Upgrade that YARP carries out, to a WebSocket or SPDY, or an HTTP/2 extended
/// CONNECT), decided once per
/// request, here, by the first middleware that asks (the traffic counters, first in the proxy
/// pipeline), and read from the request's features by every other: admission, retries and the
/// request metrics. The answer is one of two shared instances, so remembering it allocates nothing.
/// A request that can be neither (not a CONNECT, and no <c>upgrade</c> in its <c>Connection</c> header, which an
/// HTTP/1.1 Upgrade must carry and HTTP/2 forbids) is answered from its method and that header alone: the common
/// request, a keep-alive one or one that closes its connection, costs no feature lookup (each is a walk through
/// Kestrel's known features, and a miss goes on to the connection's). So it must be asked while the request's head is
/// there: once a WebSocket's handshake is done, the relay lets the client's request headers go
/// (<c>WebSocketRelay.ReleaseClientRequestHead</c>), and an HTTP/1.1 upgrade would read as none. Every caller asks before
/// the request is forwarded or while its response is transformed, and the request's frame keeps its first answer.
/// </summary>
internal sealed class UpgradeRequest
{
    private static readonly UpgradeRequest Yes = new(true);
    private static readonly UpgradeRequest No = new(false);

    private UpgradeRequest(bool isUpgrade) => IsUpgrade = isUpgrade;

    public bool IsUpgrade { get; }

    public static bool Is(HttpContext context)
    {
        var request = context.Request;
        if (!HttpMethods.IsConnect(request.Method) && !MayAskForUpgrade(request.Headers.Connection))
        {
            return false;
        }

        var features = context.Features;
        if (features.Get<UpgradeRequest>() is { } known)
        {
            return known.IsUpgrade;
        }

        var upgrade = (features.Get<IHttpUpgradeFeature>()?.IsUpgradableRequest == true && IsOneYarpUpgrades(request.Headers.Upgrade))
            || features.Get<IHttpExtendedConnectFeature>()?.IsExtendedConnect == true;
        features.Set(upgrade ? Yes : No);
        return upgrade;
    }

    // YARP upgrades an HTTP/1.1 request only to a WebSocket or to SPDY (kubectl's exec); it drops any other Upgrade
    // header (h2c, say) and forwards the request as an ordinary one, which must then be admitted as one: counted as an
    // upgrade, it skipped every concurrency limit (tried: a global limit of 4 let 20 such GETs reach a slow backend at once).
    private static bool IsOneYarpUpgrades(StringValues upgrade)
    {
        var protocol = upgrade.ToString();
        return protocol.Equals("websocket", StringComparison.OrdinalIgnoreCase) || protocol.StartsWith("SPDY/", StringComparison.OrdinalIgnoreCase);
    }

    // Any mention of the token will do (Kestrel decides whether it is one): this only rules requests out.
    private static bool MayAskForUpgrade(StringValues connection)
    {
        foreach (var value in connection)
        {
            if (value is not null && value.Contains("upgrade", StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }
}
