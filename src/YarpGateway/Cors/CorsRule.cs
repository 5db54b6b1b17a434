using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;
using YarpGateway.Configuration;

namespace YarpGateway.Cors;

/// <summary>
/// A route's <c>CorsPolicy</c> must name a policy under <c>Gateway:Cors:Policies</c> (<c>Default</c>
/// included), or be <c>Disable</c>; with no policy configured no CORS middleware runs, and any
/// <c>CorsPolicy</c> is an error (ASP.NET Core would answer 500 to every request of the route).
/// </summary>
internal sealed class CorsRule(IOptions<GatewayCorsOptions> options, IConfiguration configuration) : IProxyConfigRule
{
    public void ValidateRoute(RouteConfig route, string key, ICollection<ConfigError> errors)
    {
        var policy = route.CorsPolicy;
        if (string.IsNullOrEmpty(policy))
        {
            return;
        }

        var policies = Policies();
        if (policies.Count == 0)
        {
            errors.Add(new ConfigError(key + ":CorsPolicy",
                $"'{policy}': no CORS policies are configured under {GatewayCorsOptions.SectionName}:Policies (read at start-up); define one, or remove CorsPolicy and let the backend answer CORS."));
        }
        else if (!RoutePolicyNames.Is(policy, RoutePolicyNames.Disable) && !policies.ContainsKey(policy))
        {
            errors.Add(new ConfigError(key + ":CorsPolicy",
                $"'{policy}' is not a policy under {GatewayCorsOptions.SectionName}:Policies ({RoutePolicyNames.Describe(policies.Keys)}); \"Disable\" turns CORS off. Policies are read at start-up: a new one takes a restart."));
        }
    }

    public void ValidateCluster(ClusterConfig cluster, string key, ICollection<ConfigError> errors)
    {
    }

    internal bool Enabled => Policies().Count > 0;

    private Dictionary<string, CorsPolicySettings> Policies() => options.ValueOrUnvalidated(configuration, GatewayCorsOptions.SectionName).Policies;
}
