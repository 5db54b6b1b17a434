using Microsoft.AspNetCore.Routing.Patterns;
using Yarp.ReverseProxy.Configuration;

namespace YarpGateway.Configuration;

/// <summary>
/// What YARP's own transform validation takes and the requests then get wrong, every one of them tried on a reload:
/// <list type="bullet">
/// <item>a header name that is not a token (<c>X A</c>, also as <c>X-Forwarded</c>'s <c>HeaderPrefix</c> or <c>ClientCert</c>):
/// every request to the route 502; to be removed, it never matches;</item>
/// <item>a request header value with a line break (dropped from every request without a word) or another control
/// character (sent as it is); a response header or trailer value with one (every request 502), or with a character
/// Latin-1 has not (sent as <c>?</c>: the gateway sends header bytes as it receives them, Latin-1);</item>
/// <item>a route value the route's path does not capture, named by <c>PathPattern</c>, <c>QueryRouteParameter</c> or
/// <c>RequestHeaderRouteValue</c>: the part is left out of every request (<c>/api/{id}</c> sent <c>/api</c>);</item>
/// <item>a <c>PathRemovePrefix</c> that ends with <c>/</c> (<c>/api/</c>): removed from no path under it, so
/// <c>/api/x</c> reached the backend unchanged; a <c>PathPrefix</c> that ends with one: <c>/v1//x</c>.</item>
/// </list>
/// A transform YARP cannot build at all (an invalid method or path pattern) is <see cref="GatewayConfigValidator"/>'s.
/// </summary>
internal sealed class TransformValuesRule : IProxyConfigRule
{
    private static readonly string[] RequestHeaderNames = ["RequestHeader", "RequestHeaderRouteValue", "RequestHeaderRemove", "ClientCert"];
    private static readonly string[] ResponseHeaderNames = ["ResponseHeader", "ResponseHeaderRemove", "ResponseTrailer", "ResponseTrailerRemove"];
    private static readonly string[] ValueKeys = ["Set", "Append"];

    public void ValidateRoute(RouteConfig route, string key, ICollection<ConfigError> errors)
    {
        if (route.Transforms is not { Count: > 0 } transforms)
        {
            return;
        }

        HashSet<string>? routeValues = null;
        for (var i = 0; i < transforms.Count; i++)
        {
            var transform = transforms[i];
            var at = $"{key}:Transforms:{i}:";
            foreach (var name in RequestHeaderNames.Concat(ResponseHeaderNames))
            {
                if (transform.TryGetValue(name, out var header) && !HttpSyntax.IsToken(header))
                {
                    errors.Add(new ConfigError(at + name, $"'{header}' is not a header name ({HttpSyntax.TokenCharacters}){(name.EndsWith("Remove", StringComparison.Ordinal) ? ": no request or response carries it, so nothing would be removed" : ": every request to the route would fail with 502")}."));
                }
            }

            if (transform.TryGetValue("X-Forwarded", out _) && transform.TryGetValue("HeaderPrefix", out var prefix) && prefix.Length > 0 && !HttpSyntax.IsToken(prefix))
            {
                errors.Add(new ConfigError(at + "HeaderPrefix", $"'{prefix}' cannot start a header name ({HttpSyntax.TokenCharacters}): every request to the route would fail with 502."));
            }

            foreach (var valueKey in ValueKeys)
            {
                if (!transform.TryGetValue(valueKey, out var value))
                {
                    continue;
                }

                if (transform.ContainsKey("RequestHeader") && HttpSyntax.FirstControlCharacter(value) is { } requestControl)
                {
                    errors.Add(new ConfigError(at + valueKey, $"the header value has the control character {HttpSyntax.Describe(requestControl)}, which no header can carry{(requestControl is '\r' or '\n' ? ": the header would be left out of every request" : string.Empty)}."));
                }
                else if ((transform.ContainsKey("ResponseHeader") || transform.ContainsKey("ResponseTrailer")) && ResponseValueProblem(value) is { } responseProblem)
                {
                    errors.Add(new ConfigError(at + valueKey, responseProblem));
                }
                else if (transform.ContainsKey("RequestHeaderRouteValue") || transform.ContainsKey("QueryRouteParameter"))
                {
                    routeValues ??= RouteValues(route);
                    if (!routeValues.Contains(value))
                    {
                        errors.Add(new ConfigError(at + valueKey, MissingRouteValue(route, value)));
                    }
                }
            }

            if (transform.TryGetValue("PathRemovePrefix", out var removed) && removed.Length > 1 && removed.EndsWith('/'))
            {
                var trimmed = removed.TrimEnd('/');
                errors.Add(new ConfigError(at + "PathRemovePrefix", $"'{removed}' ends with '/', so it is removed from no path under it: YARP removes a prefix of whole segments, and '{trimmed}/x' starts with the segment '{trimmed}', not '{removed}' ('{trimmed}/x' would reach the backend unchanged). Write '{(trimmed.Length == 0 ? "/" : trimmed)}'."));
            }

            if (transform.TryGetValue("PathPrefix", out var added) && added.EndsWith('/'))
            {
                errors.Add(new ConfigError(at + "PathPrefix", $"'{added}' ends with '/', and every path it is put before starts with one: '/x' would reach the backend as '{added}/x'. Write '{(added.TrimEnd('/') is { Length: > 0 } t ? t : "nothing (no PathPrefix)")}'."));
            }

            if (transform.TryGetValue("PathPattern", out var pattern) && TryParse(pattern) is { } parsed)
            {
                routeValues ??= RouteValues(route);
                foreach (var parameter in parsed.Parameters.Where(p => !routeValues.Contains(p.Name)))
                {
                    errors.Add(new ConfigError(at + "PathPattern", $"'{pattern}': {MissingRouteValue(route, parameter.Name)}"));
                }
            }
        }
    }

    public void ValidateCluster(ClusterConfig cluster, string key, ICollection<ConfigError> errors)
    {
    }

    private static string? ResponseValueProblem(string value)
    {
        if (HttpSyntax.FirstControlCharacter(value) is { } control)
        {
            return $"the header value has the control character {HttpSyntax.Describe(control)}, which no header can carry: every request to the route would fail with 502.";
        }

        foreach (var c in value)
        {
            if (c > '\xFF')
            {
                return $"the header value has '{c}' ({HttpSyntax.Describe(c)}), which Latin-1 has not: response headers are sent in Latin-1, and clients would get '?'. Send it encoded (percent-encoding, or RFC 8187's UTF-8''... form).";
            }
        }

        return null;
    }

    private static string MissingRouteValue(RouteConfig route, string name)
    {
        var path = route.Match.Path;
        return string.IsNullOrEmpty(path)
            ? $"the route value '{name}' does not exist: the route has no Match.Path to capture it, and it would be left out of every request."
            : $"the route value '{name}' is not captured by the route's Match.Path '{path}' (it captures {Captured(path)}), and it would be left out of every request.";
    }

    private static string Captured(string path)
    {
        var names = TryParse(path)?.Parameters.Select(p => "'" + p.Name + "'").ToArray() ?? [];
        return names.Length == 0 ? "nothing" : string.Join(", ", names);
    }

    private static HashSet<string> RouteValues(RouteConfig route)
        => new((TryParse(route.Match.Path)?.Parameters ?? []).Select(p => p.Name), StringComparer.OrdinalIgnoreCase);

    private static RoutePattern? TryParse(string? pattern)
    {
        if (string.IsNullOrEmpty(pattern))
        {
            return null;
        }

        try
        {
            return RoutePatternFactory.Parse(pattern);
        }
        catch (RoutePatternException)
        {
            return null; // the route's path is YARP's validator's to name; a transform's pattern, the validator's build
        }
    }
}
