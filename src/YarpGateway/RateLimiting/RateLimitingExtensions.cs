using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.RateLimiting;

/// <summary>Registration and pipeline placement of route rate limits.</summary>
internal static class RateLimitingExtensions
{
    public static IServiceCollection AddGatewayRateLimiting(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddReloadablePolicyOptions<GatewayRateLimitingOptions, GatewayRateLimitingOptionsValidator>(configuration, GatewayRateLimitingOptions.SectionName,
            options => options.Policies.Keys, readAtStart: nameof(RateLimitPolicySettings.PartitionBy));
        services.AddSingleton<RateLimitRejections>();
        services.AddSingleton<RateLimitPolicies>();
        services.AddSingleton<RateLimitingMetrics>();
        services.AddSingleton<IProxyConfigRule, RateLimitingRule>();
        services.AddRateLimiter(_ => { });
        services.AddSingleton<IConfigureOptions<RateLimiterOptions>, RateLimitingSetup>();
        return services;
    }

    /// <summary>After authorization (a policy may partition by claim): only when a policy is configured.</summary>
    public static void UseGatewayRateLimiting(this WebApplication app)
    {
        if (app.Services.GetRequiredService<RateLimitPolicies>().Enabled)
        {
            _ = app.Services.GetRequiredService<RateLimitingMetrics>();
            app.UseRateLimiter();
        }
    }
}
