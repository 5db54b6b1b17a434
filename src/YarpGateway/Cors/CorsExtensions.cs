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
        services.AddSingleton<CorsMetrics>();
        services.AddSingleton<WebSocketOriginCheck>();
        services.AddSingleton<RefusedBeforeRouting>();
        services.AddSingleton<IProxyConfigRule>(sp => sp.GetRequiredService<CorsRule>());
        return services;
    }

    /// <summary>
    /// After routing, before authorization (a preflight carries no token): only when a policy is
    /// configured, and then only for the routes that name one (the middleware allocates the request's
    /// <c>Items</c>; the other routes pay one metadata lookup). Then the same policy's origins for the
    /// routes' WebSocket handshakes (<see cref="WebSocketOriginCheck"/>).
    /// </summary>
    public static void UseGatewayCors(this WebApplication app)
    {
        if (app.Services.GetRequiredService<CorsRule>().Enabled)
        {
            _ = app.Services.GetRequiredService<ICorsPolicyProvider>(); // now: a reload before the first request applies too
            var origins = app.Services.GetRequiredService<WebSocketOriginCheck>();
            app.UseWhen(static context => context.GetEndpoint()?.Metadata.GetMetadata<ICorsMetadata>() is not null, branch =>
            {
                branch.UseCors();
                branch.Use(next => context => origins.InvokeAsync(context, next));
            });
            app.Use(RefusedBeforeRouting.EndAfterCors); // a request the global limit refused, carried here for its CORS headers, ends
        }
    }
}
