using Microsoft.AspNetCore.OutputCaching;
using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.OutputCaching;

/// <summary>Registration and pipeline placement of the output cache.</summary>
internal static class OutputCachingExtensions
{
    public static IServiceCollection AddGatewayOutputCache(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddReloadablePolicyOptions<GatewayOutputCacheOptions, GatewayOutputCacheOptionsValidator>(configuration, GatewayOutputCacheOptions.SectionName,
            options => options.Policies.Keys);
        services.AddSingleton<OutputCachePolicies>();
        services.AddSingleton<ReloadableOutputCachePolicy>();
        services.AddSingleton<IProxyConfigRule, OutputCacheRule>();
        // Before AddOutputCache, which adds ASP.NET Core's own store only when none is registered.
        services.AddSingleton<OutputCacheMemoryStore>();
        services.AddSingleton<IOutputCacheStore>(sp => sp.GetRequiredService<OutputCacheMemoryStore>());
        services.AddSingleton<OutputCacheMetrics>();
        services.AddOutputCache();
        services.AddSingleton<OutputCacheLog>();
        services.AddSingleton<BackendCacheControlPolicy>();
        services.AddSingleton<Yarp.ReverseProxy.Transforms.Builder.ITransformProvider, OutputCacheResponseTransformProvider>();
        services.AddSingleton<IConfigureOptions<OutputCacheOptions>, OutputCacheSetup>();
        return services;
    }

    /// <summary>Last before the proxy, after CORS, authorization and rate limits: only when a policy is configured.</summary>
    public static void UseGatewayOutputCache(this WebApplication app)
    {
        if (app.Services.GetRequiredService<IOptions<GatewayOutputCacheOptions>>().ValueOrNew().Policies.Count > 0)
        {
            app.Services.GetRequiredService<OutputCacheMetrics>();
            app.Services.GetRequiredService<OutputCachePolicies>(); // now: a reload before the first request applies too
            app.UseOutputCache();
        }
    }
}
