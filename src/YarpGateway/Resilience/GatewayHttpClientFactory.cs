using Yarp.ReverseProxy.Forwarder;
using YarpGateway.Configuration;

namespace YarpGateway.Resilience;

/// <summary>
/// YARP's client factory, with the connect timeout (<c>ConnectTimeout</c>) and the pooled connection
/// lifetime (<c>PooledConnectionLifetime</c>) from the cluster's metadata or <see cref="ResilienceOptions"/>,
/// every backend socket counted against <see cref="Endpoints.BackendConnectionLimit"/>, header encodings that pass non-ASCII values through (<see cref="RequestFiltering.HeaderEncodings"/>), and the lean
/// connector for WebSocket upgrades (<see cref="WebSockets.UpgradeConnector"/>).
/// <para>
/// A client is rebuilt when what it was built with differs from what it would be built with now, and an edit of
/// <c>Gateway:Resilience:ConnectTimeout</c>, <c>PooledConnectionLifetime</c> or
/// <c>Gateway:WebSockets:LeanBackendConnector</c> has YARP apply the configuration once more
/// (<see cref="Configuration.GatewayConfigProvider.Reapply"/>), so that the edit reaches every cluster at once. Until
/// 2026-12-07 such an edit was logged as applied and reached no cluster: YARP builds clients only when it applies a
/// configuration, and the old client was compared with the new one through the same, current, options.
/// </para>
/// </summary>
internal sealed class GatewayHttpClientFactory : ForwarderHttpClientFactory, IDisposable
{
    private readonly ReloadableOptions<ResilienceOptions> _options;
    private readonly ReloadableOptions<WebSockets.WebSocketProxyOptions> _webSockets;
    private readonly Endpoints.BackendConnectionLimit _connections;
    private readonly GatewayConfigProvider _proxyConfig;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Built> _built = new(StringComparer.OrdinalIgnoreCase);
    private Built _defaults;

    public GatewayHttpClientFactory(ReloadableOptions<ResilienceOptions> options, ReloadableOptions<WebSockets.WebSocketProxyOptions> webSockets, Endpoints.BackendConnectionLimit connections, GatewayConfigProvider proxyConfig, ILogger<ForwarderHttpClientFactory> logger)
        : base(logger)
    {
        _options = options;
        _webSockets = webSockets;
        _connections = connections;
        _proxyConfig = proxyConfig;
        _defaults = Settings(null);
        options.Changed += OnOptionsChanged;
        webSockets.Changed += OnOptionsChanged;
    }

    /// <summary>What a cluster's client is built with.</summary>
    private readonly record struct Built(TimeSpan ConnectTimeout, TimeSpan PooledConnectionLifetime, bool LeanBackendConnector);

    private Built Settings(IReadOnlyDictionary<string, string>? clusterMetadata)
        => new(ResilienceSettings.ConnectTimeout(_options.Current, clusterMetadata), ResilienceSettings.PooledConnectionLifetime(_options.Current, clusterMetadata), _webSockets.Current.LeanBackendConnector);

    /// <summary>WebSocket upgrades to plain-http backends go through the gateway's own connector unless it is turned off.</summary>
    protected override HttpMessageHandler WrapHandler(ForwarderHttpClientContext context, HttpMessageHandler handler)
    {
        handler = base.WrapHandler(context, handler);
        var settings = Settings(context.NewMetadata);
        _built[context.ClusterId] = settings;
        return settings.LeanBackendConnector && context.NewConfig.WebProxy is null
            ? new WebSockets.UpgradeConnector(handler, settings.ConnectTimeout, RequestFiltering.HeaderEncodings.RequestEncoding(context.NewConfig), _connections)
            : handler;
    }

    protected override void ConfigureHandler(ForwarderHttpClientContext context, SocketsHttpHandler handler)
    {
        base.ConfigureHandler(context, handler);
        RequestFiltering.HeaderEncodings.ConfigureBackend(context.NewConfig, handler);
        handler.ConnectCallback = _connections.ConnectCallbackAsync; // every backend socket counted (BackendConnectionLimit)
        Apply(_options.Current, context.NewMetadata, handler);
    }

    protected override bool CanReuseOldClient(ForwarderHttpClientContext context)
        => base.CanReuseOldClient(context)
            && _built.TryGetValue(context.ClusterId, out var built) && built == Settings(context.NewMetadata);

    private void OnOptionsChanged(object _)
    {
        var now = Settings(null);
        if (now != _defaults)
        {
            _defaults = now;
            _proxyConfig.Reapply();
        }
    }

    public void Dispose()
    {
        _options.Changed -= OnOptionsChanged;
        _webSockets.Changed -= OnOptionsChanged;
    }

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
