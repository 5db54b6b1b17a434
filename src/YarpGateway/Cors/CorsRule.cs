using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;
using YarpGateway.Configuration;

namespace YarpGateway.Cors;

/// <summary>
/// A route's <c>CorsPolicy</c> must name a policy under <c>Gateway:Cors:Policies</c> (<c>Default</c> included), or be
/// <c>Disable</c>. Policies reload, so a route may name one saved in the same edit; but with no policy at start-up no CORS
/// middleware runs, and any <c>CorsPolicy</c> is an error until a restart (ASP.NET Core would answer 500 to every
/// request of the route).
/// </summary>
internal sealed class CorsRule(IOptions<GatewayCorsOptions> options, ReloadableOptions<GatewayCorsOptions> reloadable, IConfiguration configuration) : IProxyConfigRule
{
    private volatile OnDiskPolicies? _onDisk;

    public void ValidateRoute(RouteConfig route, string key, ICollection<ConfigError> errors)
    {
        var policy = route.CorsPolicy;
        if (string.IsNullOrEmpty(policy))
        {
            return;
        }

        if (!Enabled)
        {
            errors.Add(new ConfigError(key + ":CorsPolicy",
                $"'{policy}': no CORS policies were configured under {GatewayCorsOptions.SectionName}:Policies at start-up, so no CORS middleware runs; define one and restart, or remove CorsPolicy and let the backend answer CORS.")
            {
                UndefinedPolicy = (GatewayCorsOptions.SectionName, policy),
            });
            return;
        }

        var policies = OnDisk();
        if (!RoutePolicyNames.Is(policy, RoutePolicyNames.Disable) && !policies.ContainsKey(policy))
        {
            errors.Add(new ConfigError(key + ":CorsPolicy",
                $"'{policy}' is not a policy under {GatewayCorsOptions.SectionName}:Policies ({RoutePolicyNames.Describe(policies.Keys)}); \"Disable\" turns CORS off.")
            {
                UndefinedPolicy = (GatewayCorsOptions.SectionName, policy),
            });
        }
    }

    public void ValidateCluster(ClusterConfig cluster, string key, ICollection<ConfigError> errors)
    {
    }

    /// <summary>How <see cref="StartupOnlySections"/> names what of <c>Gateway:Cors</c> is read at start-up.</summary>
    internal const string ReadAtStartPart = GatewayCorsOptions.SectionName + " (whether it has any policy)";

    /// <summary>What of <c>Gateway:Cors</c> is read at start-up: whether it has a policy (and so the CORS middleware runs).</summary>
    internal static Dictionary<string, string> ReadAtStart(IConfiguration configuration)
        => PolicyKeys.Names(configuration.GetSection(GatewayCorsOptions.SectionName)).Any()
            ? new Dictionary<string, string> { ["Policies"] = "defined" }
            : new Dictionary<string, string>();

    /// <summary>Whether policies were configured at start-up, and so the CORS middleware runs.</summary>
    internal bool Enabled => options.ValueOrUnvalidated(configuration, GatewayCorsOptions.SectionName).Policies.Count > 0;

    // The policies as saved, so that an edit adding a policy and a route naming it is one valid edit (an invalid
    // section is rejected on its own, and logged; a route naming a policy it would add then gets no CORS header). A
    // section with a value that does not convert is rejected whole, and the binder would drop its policy without a word:
    // the routes are checked against the policies in force meanwhile, not told that the policy does not exist. Read once
    // per reload of the configuration (its reload token), not once per route.
    private Dictionary<string, CorsPolicySettings> OnDisk()
    {
        var token = configuration.GetReloadToken();
        if (_onDisk is { } read && ReferenceEquals(read.Token, token))
        {
            return read.Policies;
        }

        var policies = ReadOnDisk();
        _onDisk = new OnDiskPolicies(token, policies);
        return policies;
    }

    private Dictionary<string, CorsPolicySettings> ReadOnDisk()
    {
        var section = configuration.GetSection(GatewayCorsOptions.SectionName);
        if (OptionsBindingErrors.Find<GatewayCorsOptions>(section, []).Count > 0)
        {
            return reloadable.Current.Policies;
        }

        try
        {
            return section.Get<GatewayCorsOptions>()?.Policies ?? new();
        }
        catch (InvalidOperationException)
        {
            return reloadable.Current.Policies;
        }
    }

    private sealed record OnDiskPolicies(Microsoft.Extensions.Primitives.IChangeToken Token, Dictionary<string, CorsPolicySettings> Policies);
}
