using Yarp.ReverseProxy.Forwarder;
using YarpGateway.Configuration;

namespace YarpGateway.Resilience;

/// <summary>
/// YARP's client factory, with the connect timeout (<c>ConnectTimeout</c>) and the pooled connection
/// lifetime (<c>PooledConnectionLifetime</c>) from the cluster's metadata or <see cref="ResilienceOptions"/>,
/// every backend socket counted against <see cref="Endpoints.BackendConnectionLimit"/>, header encodings that pass non-ASCII values through (<see cref="RequestFiltering.HeaderEncodings"/>), and the lean
/// connector for WebSocket upgrades (<see cref="WebSockets.UpgradeConnector"/>).
/// </summary>
internal sealed class GatewayHttpClientFactory(ReloadableOptions<ResilienceOptions> options, ReloadableOptions<WebSockets.WebSocketProxyOptions> webSockets, Endpoints.BackendConnectionLimit connections, ILogger<ForwarderHttpClientFactory> logger) : ForwarderHttpClientFactory(logger)
{
    /// <summary>WebSocket upgrades to plain-http backends go through the gateway's own connector unless it is turned off.</summary>
    protected override HttpMessageHandler WrapHandler(ForwarderHttpClientContext context, HttpMessageHandler handler)
    {
        handler = base.WrapHandler(context, handler);
        return webSockets.Current.LeanBackendConnector && context.NewConfig.WebProxy is null
            ? new WebSockets.UpgradeConnector(handler, ResilienceSettings.ConnectTimeout(options.Current, context.NewMetadata), RequestFiltering.HeaderEncodings.RequestEncoding(context.NewConfig), connections)
            : handler;
    }

    protected override void ConfigureHandler(ForwarderHttpClientContext context, SocketsHttpHandler handler)
    {
        base.ConfigureHandler(context, handler);
        RequestFiltering.HeaderEncodings.ConfigureBackend(context.NewConfig, handler);
        handler.ConnectCallback = connections.ConnectCallbackAsync; // every backend socket counted (BackendConnectionLimit)
        Apply(options.Current, context.NewMetadata, handler);
    }

    protected override bool CanReuseOldClient(ForwarderHttpClientContext context)
        => base.CanReuseOldClient(context)
            && ResilienceSettings.ConnectTimeout(options.Current, context.OldMetadata) == ResilienceSettings.ConnectTimeout(options.Current, context.NewMetadata)
            && ResilienceSettings.PooledConnectionLifetime(options.Current, context.OldMetadata) == ResilienceSettings.PooledConnectionLifetime(options.Current, context.NewMetadata);

    /// <summary>
    /// How long a request sent with <c>Expect: 100-continue</c> waits for the backend's <c>100 Continue</c> before its
    /// body goes anyway (<see cref="ExpectContinueTransformProvider"/>): what a backend that ignores <c>Expect</c>
    /// costs an upload. The handler's default is 1 s; a backend that reads its headers answers in milliseconds.
    /// </summary>
    internal static readonly TimeSpan ExpectContinueTimeout = TimeSpan.FromMilliseconds(250);

    internal static void Apply(ResilienceOptions options, IReadOnlyDictionary<string, string>? clusterMetadata, SocketsHttpHandler handler)
    {
        handler.Expect100ContinueTimeout = ExpectContinueTimeout;
        handler.ConnectTimeout = ResilienceSettings.ConnectTimeout(options, clusterMetadata);
        handler.PooledConnectionLifetime = ResilienceSettings.PooledConnectionLifetime(options, clusterMetadata);
    }
}
