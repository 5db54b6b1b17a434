using Yarp.ReverseProxy.Configuration;
using YarpGateway.Configuration;

namespace YarpGateway.WebSockets;

/// <summary>WebSocket route metadata must parse; checked at start-up and on reload.</summary>
internal sealed class WebSocketMetadataRule : IProxyConfigRule
{
    public IEnumerable<string> MetadataKeys =>
    [
        WebSocketSettings.BufferKey, WebSocketSettings.PolicyKey, WebSocketSettings.WriteTimeoutKey, WebSocketSettings.DisconnectAfterKey,
        WebSocketSettings.MaxDroppedMessagesKey, WebSocketSettings.MaxDroppedBytesKey, WebSocketSettings.WebSocketOnlyKey,
    ];

    public void ValidateRoute(RouteConfig route, string key, ICollection<ConfigError> errors)
        => WebSocketSettings.Validate(route.Metadata, key + ":Metadata", errors);

    public void ValidateCluster(ClusterConfig cluster, string key, ICollection<ConfigError> errors)
    {
    }
}
