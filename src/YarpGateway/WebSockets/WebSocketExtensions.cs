using YarpGateway.Configuration;
using YarpGateway.Health;

namespace YarpGateway.WebSockets;

/// <summary>Registration and pipeline wiring for WebSocket relaying.</summary>
internal static class WebSocketExtensions
{
    public static IServiceCollection AddWebSocketRelay(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddReloadableOptions<WebSocketProxyOptions, WebSocketProxyOptionsValidator>(configuration, WebSocketProxyOptions.SectionName);
        services.AddSingleton<IProxyConfigRule, WebSocketMetadataRule>();
        services.AddSingleton<WebSocketCounters>();
        services.AddSingleton<WebSocketMetrics>();
        services.AddSingleton<WebSocketRelays>();
        services.AddSingleton<IDrainParticipant>(sp => sp.GetRequiredService<WebSocketRelays>());
        services.AddSingleton<WebSocketRelayMiddleware>();
        services.AddSingleton<Yarp.ReverseProxy.Transforms.Builder.ITransformProvider, UpgradedResponseTransformProvider>();
        return services;
    }

    /// <summary>First in the proxy pipeline: WebSocket requests get their relay before anything else runs.</summary>
    public static IReverseProxyApplicationBuilder UseWebSocketRelay(this IReverseProxyApplicationBuilder proxy)
    {
        var middleware = proxy.ApplicationServices.GetRequiredService<WebSocketRelayMiddleware>();
        proxy.Use(next => context => middleware.InvokeAsync(context, next));
        return proxy;
    }
}
