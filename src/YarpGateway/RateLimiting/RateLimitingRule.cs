using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;
using YarpGateway.Configuration;

namespace YarpGateway.RateLimiting;

/// <summary>
/// A route's <c>RateLimiterPolicy</c> must be <c>Disable</c> or a policy under
/// <c>Gateway:RateLimiting:Policies</c>; a policy partitioned by a claim needs a route that
/// authenticates (else every request would share one partition).
/// </summary>
internal sealed class RateLimitingRule(IOptions<GatewayRateLimitingOptions> options, IConfiguration configuration) : IProxyConfigRule
{
    public void ValidateRoute(RouteConfig route, string key, ICollection<ConfigError> errors)
    {
        var name = route.RateLimiterPolicy;
        if (string.IsNullOrEmpty(name) || RoutePolicyNames.Is(name, RoutePolicyNames.Disable))
        {
            return;
        }

        var policies = options.ValueOrUnvalidated(configuration, GatewayRateLimitingOptions.SectionName).Policies;
        if (!policies.TryGetValue(name, out var policy))
        {
            var hint = RoutePolicyNames.Is(name, RoutePolicyNames.Default) ? " The gateway has no default rate limit: name a policy." : string.Empty;
            errors.Add(new ConfigError(key + ":RateLimiterPolicy",
                $"'{name}' is not a policy under {GatewayRateLimitingOptions.SectionName}:Policies ({RoutePolicyNames.Describe(policies.Keys)}); \"Disable\" turns limits off.{hint} Policies are read at start-up: a new one takes a restart.")
            {
                UndefinedPolicy = (GatewayRateLimitingOptions.SectionName, name),
            });
            return;
        }

        if (policy is not null && PartitionKind.TryParse(policy.PartitionBy, out var kind) && kind.Source == PartitionSource.Claim && !RoutePolicyNames.Authenticates(route.AuthorizationPolicy))
        {
            errors.Add(new ConfigError(key + ":RateLimiterPolicy",
                $"policy '{name}' is partitioned by claim '{kind.Name}', and this route does not authenticate, so every request would share one partition; give the route an AuthorizationPolicy, or use a policy partitioned by ClientIp."));
        }
    }

    public void ValidateCluster(ClusterConfig cluster, string key, ICollection<ConfigError> errors)
    {
    }
}
