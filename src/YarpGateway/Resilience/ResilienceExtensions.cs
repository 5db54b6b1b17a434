using Microsoft.AspNetCore.Http.Timeouts;
using Microsoft.Extensions.Options;
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
        services.AddSingleton<PassiveHealthReporter>();
        services.AddSingleton<RetryBudgets>();
        services.AddSingleton<ProxyRetryMiddleware>();
        services.AddSingleton<ITransformProvider, RetryResponseTransformProvider>();
        services.AddSingleton<ITransformProvider, ExpectContinueTransformProvider>(); // a backend's 413 before the body is not a 502
        services.AddSingleton<IForwarderHttpClientFactory, GatewayHttpClientFactory>(); // replaces YARP's (last registration wins)
        services.AddSingleton<OutlierEjectionPolicy>();
        services.AddSingleton<IPassiveHealthCheckPolicy>(sp => sp.GetRequiredService<OutlierEjectionPolicy>());
        services.AddSingleton<Yarp.ReverseProxy.Model.IClusterChangeListener>(sp => sp.GetRequiredService<OutlierEjectionPolicy>()); // a changed address lifts an ejection
        services.AddSingleton<Yarp.ReverseProxy.Configuration.IProxyConfigFilter, PassiveHealthDefaults>();
        return services;
    }

    /// <summary>
    /// ASP.NET Core's request-timeouts middleware, for the routes that set YARP's <c>Timeout</c> or
    /// <c>TimeoutPolicy</c> (their endpoints carry the metadata). The middleware allocates a closure on
    /// entry to every request, with or without a timeout (its async local function captures the
    /// request: 56 bytes), so requests on the other routes do not go through it. After routing.
    /// </summary>
    public static void UseRouteTimeouts(this WebApplication app)
    {
        if (app.Services.GetRequiredService<IOptions<RequestTimeoutOptions>>().Value.DefaultPolicy?.Timeout is not null)
        {
            app.UseRequestTimeouts(); // a default applies to every request
            return;
        }

        app.UseWhen(static context => HasTimeout(context.GetEndpoint()), static branch => branch.UseRequestTimeouts());
    }

    private static bool HasTimeout(Endpoint? endpoint)
        => endpoint is not null
            && (endpoint.Metadata.GetMetadata<RequestTimeoutAttribute>() is not null || endpoint.Metadata.GetMetadata<RequestTimeoutPolicy>() is not null);

    /// <summary>In the proxy pipeline, before session affinity and load balancing.</summary>
    public static IReverseProxyApplicationBuilder UseRetries(this IReverseProxyApplicationBuilder proxy)
    {
        var retries = proxy.ApplicationServices.GetRequiredService<ProxyRetryMiddleware>();
        proxy.Use(next => context => retries.InvokeAsync(context, next));
        return proxy;
    }
}
