using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.LoadBalancing;

namespace YarpGateway.Configuration;

/// <summary>
/// Validates a proxy configuration completely before it is applied: what the reader could not read,
/// cluster references, ambiguous routes and destination addresses, every feature's <see cref="IProxyConfigRule"/>, and
/// YARP's own validator. Returns every error, never just the first.
/// </summary>
internal sealed class GatewayConfigValidator(IConfigValidator yarpValidator, IEnumerable<ILoadBalancingPolicy> loadBalancingPolicies, IEnumerable<IProxyConfigRule> rules)
{
    private readonly IProxyConfigRule[] _rules = rules.ToArray();
    private readonly string _policyNames = string.Join(", ", loadBalancingPolicies.Select(p => p.Name).Order(StringComparer.Ordinal));

    private const string RoutesKey = ProxyConfigReader.SectionName + ":Routes:";
    private const string ClustersKey = ProxyConfigReader.SectionName + ":Clusters:";

    public async ValueTask<IReadOnlyList<ConfigError>> ValidateAsync(ProxyConfigReadResult config, CancellationToken cancellationToken)
    {
        var errors = new List<ConfigError>(config.Errors);
        var clusterIds = new HashSet<string>(config.Clusters.Select(c => c.ClusterId), StringComparer.OrdinalIgnoreCase);

        foreach (var route in config.Routes)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var key = RoutesKey + route.RouteId;
            if (!string.IsNullOrEmpty(route.ClusterId) && !clusterIds.Contains(route.ClusterId))
            {
                var known = clusterIds.Count == 0 ? "none are defined" : "defined clusters: " + string.Join(", ", clusterIds.Order(StringComparer.Ordinal));
                errors.Add(new ConfigError(key + ":ClusterId", $"route '{route.RouteId}' refers to cluster '{route.ClusterId}', which is not defined ({known})."));
            }

            foreach (var rule in _rules)
            {
                rule.ValidateRoute(route, key, errors);
            }

            // YARP's own "policy 'x' not found" is left out where a feature's rule has said it better.
            var policyErrors = errors.Count(e => e.Key.StartsWith(key + ":", StringComparison.Ordinal) && e.Key.EndsWith("Policy", StringComparison.Ordinal));
            foreach (var exception in await yarpValidator.ValidateRouteAsync(route))
            {
                if (policyErrors > 0 && exception.Message.Contains("' not found for route '", StringComparison.Ordinal))
                {
                    continue;
                }

                errors.Add(new ConfigError(key, exception.Message));
            }
        }

        ValidateDistinctMatches(config.Routes, errors);

        foreach (var cluster in config.Clusters)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var key = ClustersKey + cluster.ClusterId;
            ValidateDestinationAddresses(cluster, key, errors);
            foreach (var rule in _rules)
            {
                rule.ValidateCluster(cluster, key, errors);
            }

            foreach (var exception in await yarpValidator.ValidateClusterAsync(cluster))
            {
                var message = exception.Message.Contains(nameof(ILoadBalancingPolicy), StringComparison.Ordinal)
                    ? $"{exception.Message} Available policies: {_policyNames}."
                    : exception.Message;
                errors.Add(new ConfigError(key, message));
            }
        }

        return errors;
    }

    /// <summary>
    /// Two routes with the same match and order are ambiguous: every request they match fails with
    /// ASP.NET Core's AmbiguousMatchException (a 500), though YARP's validation passes them.
    /// </summary>
    private static void ValidateDistinctMatches(IReadOnlyList<RouteConfig> routes, List<ConfigError> errors)
    {
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var route in routes)
        {
            var signature = MatchSignature(route);
            if (seen.TryGetValue(signature, out var first))
            {
                errors.Add(new ConfigError(RoutesKey + route.RouteId + ":Match",
                    $"route '{route.RouteId}' has the same Match and Order as route '{first}', so every request they match would fail as ambiguous; give one of them a different Order, or remove it."));
            }
            else
            {
                seen[signature] = route.RouteId;
            }
        }
    }

    // The match as ASP.NET Core's routing compares it: path (case-insensitive), hosts and methods as
    // sets, headers and query parameters, and the order.
    private static string MatchSignature(RouteConfig route)
    {
        var match = route.Match;
        static string Set(IEnumerable<string>? values, bool upper) => values is null ? string.Empty
            : string.Join(",", values.Select(v => upper ? v.ToUpperInvariant() : v.ToLowerInvariant()).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal));
        var headers = match.Headers is null ? string.Empty : string.Join(";", match.Headers.Select(h => $"{h.Name.ToLowerInvariant()}|{h.Mode}|{h.IsCaseSensitive}|{Set(h.Values, upper: false)}").Order(StringComparer.Ordinal));
        var query = match.QueryParameters is null ? string.Empty : string.Join(";", match.QueryParameters.Select(q => $"{q.Name.ToLowerInvariant()}|{q.Mode}|{q.IsCaseSensitive}|{Set(q.Values, upper: false)}").Order(StringComparer.Ordinal));
        return string.Join("\n", (match.Path ?? string.Empty).ToLowerInvariant(), Set(match.Hosts, upper: false), Set(match.Methods, upper: true), headers, query, route.Order?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "0");
    }

    /// <summary>A destination is an absolute http or https address with no query or fragment (a query ends up inside the forwarded path).</summary>
    private static void ValidateDestinationAddresses(ClusterConfig cluster, string key, List<ConfigError> errors)
    {
        if (cluster.Destinations is null)
        {
            return;
        }

        foreach (var (id, destination) in cluster.Destinations)
        {
            var addressKey = $"{key}:Destinations:{id}:Address";
            if (!Uri.TryCreate(destination.Address, UriKind.Absolute, out var uri))
            {
                continue; // YARP's own validator names it
            }

            if (uri.Scheme is not ("http" or "https"))
            {
                errors.Add(new ConfigError(addressKey, $"'{destination.Address}' has the scheme '{uri.Scheme}'; a destination is an http:// or https:// address."));
            }
            else if (uri.Query.Length > 0 || uri.Fragment.Length > 0)
            {
                errors.Add(new ConfigError(addressKey, $"'{destination.Address}' has a query or fragment, which would end up inside every forwarded path (the backend got /base/?x=1/path); use a route transform to add query parameters."));
            }
        }
    }

}
