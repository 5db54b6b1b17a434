using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;
using YarpGateway.Configuration;

namespace YarpGateway.Security;

/// <summary>
/// A route's <c>AuthorizationPolicy</c> must name something the gateway enforces: <c>Anonymous</c>
/// always; <c>Default</c> or a policy under <c>Gateway:Authorization:Policies</c> only with a bearer
/// scheme configured. Anything else is an error at start and on reload, never a 500 per request.
/// </summary>
internal sealed class SecurityRule(IConfiguration configuration, IOptions<GatewayAuthorizationOptions> options) : IProxyConfigRule
{
    private readonly bool _bearer = BearerAuthentication.IsConfigured(configuration);

    public IEnumerable<string> MetadataKeys => [QueryToken.MetadataKey];

    public void ValidateRoute(RouteConfig route, string key, ICollection<ConfigError> errors)
    {
        var policy = route.AuthorizationPolicy;
        var authenticates = RoutePolicyNames.Authenticates(policy);
        if (route.Metadata?.TryGetValue(QueryToken.MetadataKey, out var parameter) == true)
        {
            if (QueryToken.Check(parameter) is { } error)
            {
                errors.Add(new ConfigError(key + ":Metadata:" + QueryToken.MetadataKey, error));
            }
            else if (!authenticates)
            {
                errors.Add(new ConfigError(key + ":Metadata:" + QueryToken.MetadataKey,
                    $"'{parameter}' is on a route without authentication, where no token is read; give the route an AuthorizationPolicy, or remove it."));
            }
        }

        if (!authenticates || policy is null)
        {
            return;
        }

        if (!_bearer)
        {
            errors.Add(new ConfigError(key + ":AuthorizationPolicy",
                $"'{policy}' needs a validated token, and no authentication is configured; add {BearerAuthentication.SectionName} (SigningKeys or Authority, read at start-up), or use \"Anonymous\"."));
        }
        else if (!RoutePolicyNames.Is(policy, RoutePolicyNames.Default) && !Policies().ContainsKey(policy))
        {
            errors.Add(new ConfigError(key + ":AuthorizationPolicy",
                $"'{policy}' is not a policy under {GatewayAuthorizationOptions.SectionName}:Policies ({RoutePolicyNames.Describe(Policies().Keys)}); \"Default\" is any valid token. Policies are read at start-up: a new one takes a restart.")
            {
                UndefinedPolicy = (GatewayAuthorizationOptions.SectionName, policy),
            });
        }
    }

    public void ValidateCluster(ClusterConfig cluster, string key, ICollection<ConfigError> errors)
    {
    }

    private Dictionary<string, AuthorizationPolicySettings> Policies() => options.ValueOrUnvalidated(configuration, GatewayAuthorizationOptions.SectionName).Policies;
}
