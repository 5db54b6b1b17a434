using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.Security;

/// <summary>
/// Builds ASP.NET Core's authorization policies from <c>Gateway:Authorization:Policies</c>. Every
/// policy, and a route's <c>"Default"</c>, authenticates with the bearer scheme itself: nothing
/// authenticates requests of routes that do not ask for it (a token sent to an open route reaches the
/// backend unread).
/// </summary>
internal sealed class AuthorizationPolicySetup(IOptions<GatewayAuthorizationOptions> gatewayOptions) : IConfigureOptions<AuthorizationOptions>
{
    public void Configure(AuthorizationOptions options)
    {
        options.DefaultPolicy = new AuthorizationPolicyBuilder(BearerAuthentication.Scheme).RequireAuthenticatedUser().Build();
        foreach (var (name, settings) in gatewayOptions.ValueOrNew().Policies)
        {
            options.AddPolicy(name, Build(settings ?? new AuthorizationPolicySettings()));
        }
    }

    internal static AuthorizationPolicy Build(AuthorizationPolicySettings settings)
    {
        var builder = new AuthorizationPolicyBuilder(BearerAuthentication.Scheme).RequireAuthenticatedUser();
        if (settings.RequireScopes.Count > 0)
        {
            var scopes = settings.RequireScopes.ToArray();
            builder.RequireAssertion(context => TokenClaims.HasScopes(context.User, scopes));
        }

        if (settings.RequireRoles.Count > 0)
        {
            var roles = settings.RequireRoles.ToArray();
            builder.RequireAssertion(context => TokenClaims.HasAnyRole(context.User, roles));
        }

        foreach (var (claim, values) in settings.RequireClaims)
        {
            builder.RequireClaim(claim, values);
        }

        return builder.Build();
    }
}
