using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;
using YarpGateway.Configuration;

namespace YarpGateway.OutputCaching;

/// <summary>A route's <c>OutputCachePolicy</c> must name a policy under <c>Gateway:OutputCache:Policies</c>.</summary>
internal sealed class OutputCacheRule(IOptions<GatewayOutputCacheOptions> options, IConfiguration configuration) : IProxyConfigRule
{
    public void ValidateRoute(RouteConfig route, string key, ICollection<ConfigError> errors)
    {
        var name = route.OutputCachePolicy;
        var policies = options.ValueOrUnvalidated(configuration, GatewayOutputCacheOptions.SectionName).Policies;
        if (!string.IsNullOrEmpty(name) && !policies.ContainsKey(name))
        {
            errors.Add(new ConfigError(key + ":OutputCachePolicy",
                $"'{name}' is not a policy under {GatewayOutputCacheOptions.SectionName}:Policies ({RoutePolicyNames.Describe(policies.Keys)}). Policies are read at start-up: a new one takes a restart.")
            {
                UndefinedPolicy = (GatewayOutputCacheOptions.SectionName, name),
            });
        }
    }

    public void ValidateCluster(ClusterConfig cluster, string key, ICollection<ConfigError> errors)
    {
    }
}
