using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Transforms.Builder;
using YarpGateway.Configuration;

namespace YarpGateway.Security;

/// <summary>Registration and pipeline placement of bearer authentication and route authorization.</summary>
internal static class SecurityExtensions
{
    // ASP.NET Core adds its authentication and authorization middleware by itself, at the very start of
    // the pipeline (before routing, where they do nothing but cost an async call per request), unless
    // the application has placed them; these are the markers UseAuthentication/UseAuthorization set.
    private const string AuthenticationMiddlewareSetKey = "__AuthenticationMiddlewareSet";
    private const string AuthorizationMiddlewareSetKey = "__AuthorizationMiddlewareSet";

    public static IServiceCollection AddGatewaySecurity(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<GatewayAuthorizationOptions>().Bind(configuration.GetSection(GatewayAuthorizationOptions.SectionName));
        services.AddSingleton<IValidateOptions<GatewayAuthorizationOptions>, GatewayAuthorizationOptionsValidator>();
        services.AddSingleton<IProxyConfigRule, SecurityRule>();
        services.AddSingleton<SecurityMetrics>();
        services.AddSingleton<ClientNetworks>();
        services.AddSingleton<IProxyConfigRule>(static sp => sp.GetRequiredService<ClientNetworks>());
        services.AddSingleton<ITransformFactory, ClaimHeaderTransformFactory>();
        if (BearerAuthentication.IsConfigured(configuration))
        {
            services.AddSingleton<AuthenticationRefusals>();
            services.AddAuthentication().AddJwtBearer();
            services.AddSingleton<IPostConfigureOptions<JwtBearerOptions>, BearerOptionsSetup>();
            services.AddSingleton<BearerOptionsReload>();
            services.AddSingleton<IOptionsChangeTokenSource<JwtBearerOptions>>(static sp => sp.GetRequiredService<BearerOptionsReload>());
            services.AddSingleton<IConfigureOptions<AuthorizationOptions>, AuthorizationPolicySetup>();
        }

        return services;
    }

    /// <summary>After routing, before CORS and authorization: a route's <c>AllowedNetworks</c> (<see cref="ClientNetworks"/>).</summary>
    public static void UseGatewayClientNetworks(this WebApplication app)
        => app.Use(app.Services.GetRequiredService<ClientNetworks>().Middleware);

    /// <summary>
    /// After routing: the authorization middleware, for the requests whose route has an
    /// <c>AuthorizationPolicy</c> (other than <c>Anonymous</c>) only; it authenticates them with the
    /// bearer scheme (there is no authentication middleware: open routes never read a token and pay
    /// nothing for it). Without a bearer scheme, nothing.
    /// </summary>
    public static void UseGatewayAuthorization(this WebApplication app)
    {
        ((IApplicationBuilder)app).Properties[AuthenticationMiddlewareSetKey] = true;
        ((IApplicationBuilder)app).Properties[AuthorizationMiddlewareSetKey] = true;
        if (BearerAuthentication.IsConfigured(app.Configuration))
        {
            app.UseWhen(static context => context.GetEndpoint()?.Metadata.GetMetadata<IAuthorizeData>() is not null, static branch => branch.UseAuthorization());
        }
    }
}
