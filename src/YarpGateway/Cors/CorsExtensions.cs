using Microsoft.AspNetCore.Cors;
using Microsoft.AspNetCore.Cors.Infrastructure;
using Microsoft.Extensions.DependencyInjection.Extensions;
using YarpGateway.Configuration;

namespace YarpGateway.Cors;

/// <summary>Registration and pipeline placement of CORS.</summary>
internal static class CorsExtensions
{
    public static IServiceCollection AddGatewayCors(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddReloadableOptions<GatewayCorsOptions, GatewayCorsOptionsValidator>(configuration, GatewayCorsOptions.SectionName);
        services.AddCors();
        services.Replace(ServiceDescriptor.Singleton<ICorsPolicyProvider, GatewayCorsPolicyProvider>());
        services.AddSingleton<CorsRule>();
        services.AddSingleton<IProxyConfigRule>(sp => sp.GetRequiredService<CorsRule>());
        return services;
    }

    /// <summary>
    /// After routing, before authorization (a preflight carries no token): only when a policy is
    /// configured, and then only for the routes that name one (the middleware allocates the request's
    /// <c>Items</c>; the other routes pay one metadata lookup).
    /// </summary>
    public static void UseGatewayCors(this WebApplication app)
    {
        if (app.Services.GetRequiredService<CorsRule>().Enabled)
        {
            _ = app.Services.GetRequiredService<ICorsPolicyProvider>(); // now: a reload before the first request applies too
            app.UseWhen(static context => context.GetEndpoint()?.Metadata.GetMetadata<ICorsMetadata>() is not null, static branch => branch.UseCors());
        }
    }
}
