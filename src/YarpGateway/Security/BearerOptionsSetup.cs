using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.Security;

/// <summary>
/// What the gateway adds to ASP.NET Core's binding of <c>Authentication:Schemes:Bearer</c>:
/// claim types as the token writes them (<c>MapInboundClaims</c> off unless the section sets it, so
/// <c>sub</c>, <c>scope</c> and <c>role</c> are found under those names), validated tokens remembered
/// (<see cref="ValidatedTokenCache"/>), the refusals counted and logged throttled, and 503 instead
/// of 401 while the issuer's keys cannot be fetched (<see cref="ObservedIssuerConfiguration"/>), and a browser's
/// WebSocket or event stream's token read from the query where its route says so (<see cref="QueryToken"/>).
/// </summary>
internal sealed class BearerOptionsSetup(IConfiguration configuration, AuthenticationRefusals refusals, IOptions<GatewayAuthorizationOptions> gatewayOptions, TimeProvider timeProvider) : IPostConfigureOptions<JwtBearerOptions>
{
    /// <summary>Retry-After of the 503 for a token that could not be checked: the configuration manager tries the issuer again within seconds.</summary>
    private const string IssuerRetryAfterSeconds = "5";

    public void PostConfigure(string? name, JwtBearerOptions options)
    {
        if (name != BearerAuthentication.Scheme)
        {
            return;
        }

        // ASP.NET Core's binding leaves the valid issuers and the signing keys as queries over the live section: each token
        // validation read the configuration again and built the keys again, and an edit was in force at once, unchecked
        // (the section removed, every token refused). Read once, here: an edit applies when BearerOptionsReload has checked it.
        var parameters = options.TokenValidationParameters;
        parameters.ValidIssuers = parameters.ValidIssuers?.ToArray();
        parameters.ValidAudiences = parameters.ValidAudiences?.ToArray();
        parameters.IssuerSigningKeys = parameters.IssuerSigningKeys?.ToArray();

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

        if (options.ConfigurationManager is { } manager and not ObservedIssuerConfiguration)
        {
            options.ConfigurationManager = new ObservedIssuerConfiguration(manager);
        }

        var events = options.Events ??= new JwtBearerEvents();
        var received = events.OnMessageReceived;
        events.OnMessageReceived = context =>
        {
            // A WebSocket's handshake or an event stream from a browser, on a route that names a query parameter for it.
            if (QueryToken.From(context.HttpContext) is { } token)
            {
                context.Token = token;
            }

            return received(context);
        };
        var challenge = events.OnChallenge;
        events.OnChallenge = context =>
        {
            // A token refused because the issuer's keys could not be fetched says nothing about the
            // token: 503, so that clients retry rather than drop their tokens or sign in again.
            if (context.AuthenticateFailure is not null && context.Options.ConfigurationManager is ObservedIssuerConfiguration { Failure: { } unavailable })
            {
                context.HandleResponse();
                refusals.Refused(context.HttpContext, StatusCodes.Status503ServiceUnavailable, unavailable);
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                context.Response.Headers.RetryAfter = IssuerRetryAfterSeconds;
                return Endpoints.TextAnswer.WriteAsync(context.HttpContext, "gateway: the token issuer's signing keys could not be fetched\n", context.HttpContext.RequestAborted);
            }

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
