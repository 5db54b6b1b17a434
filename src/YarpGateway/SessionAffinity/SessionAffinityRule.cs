using Yarp.ReverseProxy.Configuration;
using YarpGateway.Configuration;

namespace YarpGateway.SessionAffinity;

/// <summary>
/// A cluster's session affinity as responses will carry it. YARP takes any <c>AffinityKeyName</c> and cookie
/// <c>Path</c> and <c>Domain</c>, and then (each tried on a reload): a cookie or header name that is not a token
/// (<c>a b;c</c>, <c>X A</c>) or a path with a line break made every request to the cluster 502; a path with a
/// <c>;</c> or a domain with a space went out in a <c>Set-Cookie</c> a browser reads otherwise or drops, so
/// affinity silently never held.
/// </summary>
internal sealed class SessionAffinityRule : IProxyConfigRule
{
    private const string CustomHeaderPolicy = "CustomHeader";

    public void ValidateRoute(RouteConfig route, string key, ICollection<ConfigError> errors)
    {
    }

    public void ValidateCluster(ClusterConfig cluster, string key, ICollection<ConfigError> errors)
    {
        if (cluster.SessionAffinity is not { Enabled: true } affinity)
        {
            return;
        }

        key += ":SessionAffinity:";
        var isHeader = string.Equals(affinity.Policy, CustomHeaderPolicy, StringComparison.OrdinalIgnoreCase);
        if (!string.IsNullOrEmpty(affinity.AffinityKeyName) && !HttpSyntax.IsToken(affinity.AffinityKeyName))
        {
            errors.Add(new ConfigError(key + "AffinityKeyName", $"'{affinity.AffinityKeyName}' is not a {(isHeader ? "header" : "cookie")} name ({HttpSyntax.TokenCharacters}): every request to the cluster would fail with 502."));
        }

        if (isHeader || affinity.Cookie is not { } cookie)
        {
            return;
        }

        if (cookie.Path is { } path)
        {
            var control = HttpSyntax.FirstControlCharacter(path) is not null;
            if (control || path.Contains(';', StringComparison.Ordinal))
            {
                errors.Add(new ConfigError(key + "Cookie:Path", $"'{path}' cannot be a cookie's path (no ';' or control character): {(control ? "every request to the cluster would fail with 502" : "browsers would read the cookie otherwise")}."));
            }
            else if (path.Length > 0 && path[0] != '/')
            {
                // RFC 6265 5.2.4: browsers then scope the cookie to the directory of the request that got it (/api/v1/ for
                // /api/v1/users), and requests elsewhere in the site would be balanced anew.
                errors.Add(new ConfigError(key + "Cookie:Path", $"'{path}' is not a cookie's path: write it from the root ('/{path}', or '/' for the whole site); browsers would scope the cookie to the directory of the first request, and affinity would not hold outside it."));
            }
        }

        if (!string.IsNullOrEmpty(cookie.Domain) && Uri.CheckHostName(cookie.Domain.TrimStart('.')) is not (UriHostNameType.Dns or UriHostNameType.IPv4))
        {
            errors.Add(new ConfigError(key + "Cookie:Domain", $"'{cookie.Domain}' is not a domain (a host name such as example.com or .example.com): browsers would drop the cookie, and affinity would never hold."));
        }
    }
}
