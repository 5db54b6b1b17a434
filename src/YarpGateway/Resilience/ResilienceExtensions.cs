using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Transforms.Builder;
using YarpGateway.Configuration;

namespace YarpGateway.Resilience;

/// <summary>Registration and pipeline wiring for timeouts, retries and outlier ejection.</summary>
internal static class ResilienceExtensions
{
    public static IServiceCollection AddResilience(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddReloadableOptions<ResilienceOptions, ResilienceOptionsValidator>(configuration, ResilienceOptions.SectionName);
        services.AddSingleton<IProxyConfigRule, ResilienceMetadataRule>();

        // Route timeouts (YARP's route Timeout/TimeoutPolicy) need the request-timeouts middleware.
        services.AddRequestTimeouts();

        services.AddSingleton<ResilienceMetrics>();
        services.AddSingleton<Telemetry.IKnownSeries>(sp => sp.GetRequiredService<ResilienceMetrics>());
        services.AddSingleton<Yarp.ReverseProxy.Configuration.IConfigChangeListener>(sp => sp.GetRequiredService<ResilienceMetrics>());
        services.AddSingleton<ProxyErrorLog>();
        services.AddSingleton<RetryBudgets>();
        services.AddSingleton<ProxyRetryMiddleware>();
        services.AddSingleton<ITransformProvider, RetryResponseTransformProvider>();
        services.AddSingleton<IForwarderHttpClientFactory, GatewayHttpClientFactory>(); // replaces YARP's (last registration wins)
        services.AddSingleton<IPassiveHealthCheckPolicy, OutlierEjectionPolicy>();
        services.AddSingleton<Yarp.ReverseProxy.Configuration.IProxyConfigFilter, PassiveHealthDefaults>();
        return services;
    }

    /// <summary>In the proxy pipeline, before session affinity and load balancing.</summary>
    public static IReverseProxyApplicationBuilder UseRetries(this IReverseProxyApplicationBuilder proxy)
    {
        var retries = proxy.ApplicationServices.GetRequiredService<ProxyRetryMiddleware>();
        proxy.Use(next => context => retries.InvokeAsync(context, next));
        return proxy;
    }
}
