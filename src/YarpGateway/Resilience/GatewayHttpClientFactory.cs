using Yarp.ReverseProxy.Forwarder;
using YarpGateway.Configuration;

namespace YarpGateway.Resilience;

/// <summary>YARP's client factory, with the connect timeout from the cluster's metadata (<c>ConnectTimeout</c>) or <see cref="ResilienceOptions.ConnectTimeout"/>.</summary>
internal sealed class GatewayHttpClientFactory(ReloadableOptions<ResilienceOptions> options, ILogger<ForwarderHttpClientFactory> logger) : ForwarderHttpClientFactory(logger)
{
    protected override void ConfigureHandler(ForwarderHttpClientContext context, SocketsHttpHandler handler)
    {
        base.ConfigureHandler(context, handler);
        handler.ConnectTimeout = ResilienceSettings.ConnectTimeout(options.Current, context.NewMetadata);
    }

    protected override bool CanReuseOldClient(ForwarderHttpClientContext context)
        => base.CanReuseOldClient(context)
            && ResilienceSettings.ConnectTimeout(options.Current, context.OldMetadata) == ResilienceSettings.ConnectTimeout(options.Current, context.NewMetadata);
}
