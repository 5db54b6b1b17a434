using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.Security;

/// <summary>
/// What the gateway adds to ASP.NET Core's binding of <c>Authentication:Schemes:Bearer</c>:
/// claim types as the token writes them (<c>MapInboundClaims</c> off unless the section sets it, so
/// <c>sub</c>, <c>scope</c> and <c>role</c> are found under those names), validated tokens remembered
/// (<see cref="ValidatedTokenCache"/>), and the refusals counted and logged throttled.
/// </summary>
internal sealed class BearerOptionsSetup(IConfiguration configuration, AuthenticationRefusals refusals, IOptions<GatewayAuthorizationOptions> gatewayOptions, TimeProvider timeProvider) : IPostConfigureOptions<JwtBearerOptions>
{
    public void PostConfigure(string? name, JwtBearerOptions options)
    {
        if (name != BearerAuthentication.Scheme)
        {
            return;
        }

        if (configuration[BearerAuthentication.SectionName + ":MapInboundClaims"] is null)
        {
            options.MapInboundClaims = false;
        }

        var cacheSize = gatewayOptions.ValueOrNew().TokenCacheSize;
        if (cacheSize > 0)
        {
            for (var i = 0; i < options.TokenHandlers.Count; i++)
            {
                if (options.TokenHandlers[i] is not ValidatedTokenCache)
                {
                    options.TokenHandlers[i] = new ValidatedTokenCache(options.TokenHandlers[i], cacheSize, timeProvider);
                }
            }
        }

        var events = options.Events ??= new JwtBearerEvents();
        var challenge = events.OnChallenge;
        events.OnChallenge = context =>
        {
            refusals.Refused(context.HttpContext, StatusCodes.Status401Unauthorized, context.AuthenticateFailure);
            return challenge(context);
        };
        var forbidden = events.OnForbidden;
        events.OnForbidden = context =>
        {
            refusals.Refused(context.HttpContext, StatusCodes.Status403Forbidden, failure: null);
            return forbidden(context);
        };
    }
}
