using Microsoft.AspNetCore.Routing.Patterns;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.LoadBalancing;

namespace YarpGateway.Configuration;

/// <summary>
/// Validates a proxy configuration completely before it is applied: what the reader could not read,
/// cluster references, ambiguous routes, what YARP takes but routing, Kestrel or the backend client then fail on at
/// every request or at the apply (route hosts, header matches and constraints, transforms YARP cannot build, a body
/// size below -1, destination and health addresses, destination hosts, a web proxy's address, the health probes' path,
/// query and times, an activity timeout of zero), every feature's <see cref="IProxyConfigRule"/>, and YARP's own
/// validator. Returns every error, never just the first.
/// </summary>
internal sealed class GatewayConfigValidator(IConfigValidator yarpValidator, IEnumerable<ILoadBalancingPolicy> loadBalancingPolicies, IEnumerable<IProxyConfigRule> rules,
    Microsoft.AspNetCore.Routing.ParameterPolicyFactory parameterPolicies, Microsoft.Extensions.Options.IOptions<Microsoft.AspNetCore.Routing.RouteOptions> routeOptions,
    Yarp.ReverseProxy.Transforms.Builder.ITransformBuilder transformBuilder)
{
    private readonly IProxyConfigRule[] _rules = rules.ToArray();
    private readonly string _policyNames = string.Join(", ", loadBalancingPolicies.Select(p => p.Name).Order(StringComparer.Ordinal));

    private const string RoutesKey = ProxyConfigReader.SectionName + ":Routes:";
    private const string ClustersKey = ProxyConfigReader.SectionName + ":Clusters:";

    /// <summary>Characters no Host header carries: a route host with one can never match.</summary>
    private static readonly System.Buffers.SearchValues<char> NotInAHost = System.Buffers.SearchValues.Create("/?#@ \t");

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

            ValidateHosts(route, key, errors);
            ValidateHeaderMatches(route, key, errors);
            ValidatePathPolicies(route, key, errors);
            if (route.MaxRequestBodySize is < -1 and var bodySize)
            {
                // YARP took it, and Kestrel refused the value on every request to the route, a GET included: 500.
                errors.Add(new ConfigError(key + ":MaxRequestBodySize", $"'{bodySize}' is not a size in bytes: use a whole number of at least 0, or -1 for no limit."));
            }

            foreach (var rule in _rules)
            {
                rule.ValidateRoute(route, key, errors);
            }

            // YARP's own "policy 'x' not found" is left out where a feature's rule has said it better, and always for CORS:
            // YARP asks the policies in force, which a save that adds a policy and a route naming it has not reloaded yet;
            // the CORS rule checks the route against the policies as saved.
            var policyErrors = errors.Count(e => e.Key.StartsWith(key + ":", StringComparison.Ordinal) && e.Key.EndsWith("Policy", StringComparison.Ordinal));
            IList<Exception> yarpErrors;
            try
            {
                yarpErrors = await yarpValidator.ValidateRouteAsync(route);
            }
            catch (InvalidOperationException ex)
            {
                // YARP's HttpMethodChange check throws for a key too many instead of listing it (tried: the reload
                // "failed unexpectedly", with a stack trace).
                yarpErrors = [ex];
            }

            foreach (var exception in yarpErrors)
            {
                if (exception.Message.Contains("' not found for route '", StringComparison.Ordinal)
                    && (policyErrors > 0 || exception.Message.StartsWith("CORS policy '", StringComparison.Ordinal)))
                {
                    continue;
                }

                if (exception.Message.StartsWith("Invalid path '", StringComparison.Ordinal) && errors.Any(e => e.Key == key + ":Match:Path"))
                {
                    continue; // said with its reason (ValidatePathPolicies)
                }

                errors.Add(new ConfigError(key, exception.Message));
            }

            if (yarpErrors.Count == 0 && route.Transforms is { Count: > 0 })
            {
                BuildTransforms(route, config.Clusters, key, errors);
            }
        }

        ValidateDistinctMatches(config.Routes, errors);

        foreach (var cluster in config.Clusters)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var key = ClustersKey + cluster.ClusterId;
            ValidateDestinationAddresses(cluster, key, errors);
            ValidateHealthChecks(cluster, key, errors);
            if (cluster.HttpClient?.WebProxy?.Address is { } proxy
                && (!proxy.IsAbsoluteUri || proxy.Scheme is not ("http" or "https" or "socks4" or "socks4a" or "socks5")))
            {
                // YARP takes any URI, and every request to the cluster then failed with 502 (tried: "nonsense").
                errors.Add(new ConfigError(key + ":HttpClient:WebProxy:Address", $"'{proxy.OriginalString}' is not a proxy's address: use an absolute http://, https://, socks4://, socks4a:// or socks5:// address (every request to the cluster would fail with 502)."));
            }

            if (cluster.HttpRequest?.ActivityTimeout is { } activityTimeout && activityTimeout <= TimeSpan.Zero)
            {
                // YARP takes it, and every request to the cluster then timed out at once (504) until the next edit.
                errors.Add(new ConfigError(key + ":HttpRequest:ActivityTimeout", $"'{activityTimeout}' is not a time greater than zero: every request to the cluster would time out at once (504). Leave it out for YARP's 100 s."));
            }

            ValidateHttp3(cluster, key, errors);
            ValidateTlsVersions(cluster, key, errors);
            foreach (var rule in _rules)
            {
                rule.ValidateCluster(cluster, key, errors);
            }

            var reactivationListed = errors.Any(e => e.Key == key + ":HealthCheck:Passive:ReactivationPeriod");
            foreach (var exception in await yarpValidator.ValidateClusterAsync(cluster))
            {
                if (reactivationListed && exception.Message.Contains("reactivation period", StringComparison.OrdinalIgnoreCase))
                {
                    continue; // said already, with its key (ValidateHealthChecks)
                }

                var message = exception.Message.Contains(nameof(ILoadBalancingPolicy), StringComparison.Ordinal)
                    ? $"{exception.Message} Available policies: {_policyNames}."
                    : exception.Message;
                errors.Add(new ConfigError(key, message));
            }
        }

        return errors;
    }

    /// <summary>
    /// HTTP/3 to a cluster's backends with no fallback (<c>Version</c> 3 and a <c>VersionPolicy</c> other than YARP's
    /// default <c>RequestVersionOrLower</c>): QUIC runs over TLS, so it never reaches an http:// destination, and never
    /// anything on a machine without QUIC. YARP takes it, and every request to the cluster then failed with 502
    /// ("unable to establish HTTP/3 connection"; tried).
    /// </summary>
    private static void ValidateHttp3(ClusterConfig cluster, string key, List<ConfigError> errors)
    {
        if (cluster.HttpRequest is not { Version.Major: 3, VersionPolicy: HttpVersionPolicy.RequestVersionExact or HttpVersionPolicy.RequestVersionOrHigher } request)
        {
            return;
        }

        var cleartext = (cluster.Destinations ?? new Dictionary<string, DestinationConfig>())
            .Where(d => d.Value.Address?.StartsWith("http://", StringComparison.OrdinalIgnoreCase) == true)
            .Select(d => $"'{d.Key}'")
            .ToList();
        var instead = "; let it fall back with VersionPolicy RequestVersionOrLower (YARP's default), or ask for Version 2 or 1.1.";
        if (cleartext.Count > 0)
        {
            errors.Add(new ConfigError(key + ":HttpRequest:VersionPolicy",
                $"'{request.VersionPolicy}' with Version 3 admits only HTTP/3, which runs over QUIC with TLS: to the http:// destination(s) {string.Join(", ", cleartext)} every request would fail (502){instead}"));
        }
        else if (!Endpoints.QuicSupport.IsAvailable)
        {
            errors.Add(new ConfigError(key + ":HttpRequest:VersionPolicy",
                $"'{request.VersionPolicy}' with Version 3 admits only HTTP/3, and this machine has no QUIC (.NET finds no libmsquic): every request to the cluster would fail (502){instead}"));
        }
    }

    /// <summary>
    /// TLS versions no https:// destination could be reached with: OpenSSL on the gateway's side serves one range of
    /// versions, ending at a gap, and refuses TLS 1.0 and 1.1 (<see cref="Endpoints.GatewayKestrelSetup.TlsVersionsError"/>).
    /// YARP took <c>["Tls11"]</c> and <c>["Tls", "Tls12", "Tls13"]</c>, and every request to the cluster got 502 (tried).
    /// </summary>
    private static void ValidateTlsVersions(ClusterConfig cluster, string key, List<ConfigError> errors)
    {
        if (cluster.HttpClient?.SslProtocols is not { } protocols || protocols == System.Security.Authentication.SslProtocols.None
            || cluster.Destinations?.Values.Any(d => d.Address?.StartsWith("https://", StringComparison.OrdinalIgnoreCase) == true) != true)
        {
            return;
        }

        var names = TlsVersionNames.Where(v => (protocols & v.Value) == v.Value).Select(v => v.Name).ToList();
        if (Endpoints.GatewayKestrelSetup.TlsVersionsError(names, "every request to its https:// destinations would fail (502)") is { } error)
        {
            errors.Add(new ConfigError(key + ":HttpClient:SslProtocols", error));
        }
    }

    /// <summary>The versions by value: the old ones' names are obsolete in the enum.</summary>
    private static readonly (System.Security.Authentication.SslProtocols Value, string Name)[] TlsVersionNames =
    [
        ((System.Security.Authentication.SslProtocols)0x0C, "Ssl2"), ((System.Security.Authentication.SslProtocols)0x30, "Ssl3"),
        ((System.Security.Authentication.SslProtocols)0xC0, "Tls"), ((System.Security.Authentication.SslProtocols)0x300, "Tls11"),
        (System.Security.Authentication.SslProtocols.Tls12, "Tls12"), (System.Security.Authentication.SslProtocols.Tls13, "Tls13"),
    ];

    /// <summary>
    /// Two routes with the same match and order are ambiguous: every request they both match fails with
    /// ASP.NET Core's AmbiguousMatchException (a 500, and a stack trace in the log for each), though YARP's
    /// validation passes them. "The same" as routing compares them: path patterns alike but for their
    /// parameters' names or the literals' case (<c>/x/{id}</c> and <c>/X/{name}</c>), and hosts or methods
    /// that overlap. A route with hosts, methods or headers and one without are not ambiguous: routing
    /// prefers the one that says more (tried, as are a wildcard host beside a named one and a host with a port).
    /// </summary>
    private static void ValidateDistinctMatches(IReadOnlyList<RouteConfig> routes, List<ConfigError> errors)
    {
        var seen = new Dictionary<string, List<RouteConfig>>(StringComparer.Ordinal);
        foreach (var route in routes)
        {
            var signature = MatchSignature(route);
            if (!seen.TryGetValue(signature, out var alike))
            {
                seen[signature] = alike = [];
            }

            if (alike.FirstOrDefault(other => Overlap(other.Match.Hosts, route.Match.Hosts) && Overlap(other.Match.Methods, route.Match.Methods)) is { } first)
            {
                errors.Add(new ConfigError(RoutesKey + route.RouteId + ":Match",
                    $"route '{route.RouteId}' has the same Match and Order as route '{first.RouteId}'{Alike(first, route)}, so every request they both match would fail as ambiguous; give one of them a different Order, or remove it."));
            }

            alike.Add(route);
        }
    }

    /// <summary>What makes two routes with unlike-looking matches the same to routing, for the error.</summary>
    private static string Alike(RouteConfig first, RouteConfig second)
    {
        var how = new List<string>();
        if (!string.Equals(first.Match.Path, second.Match.Path, StringComparison.Ordinal))
        {
            how.Add($"paths '{first.Match.Path}' and '{second.Match.Path}' match the same requests");
        }

        if (first.Match.Hosts is { Count: > 0 } hosts && !SameSet(hosts, second.Match.Hosts))
        {
            how.Add("both match host " + string.Join(", ", hosts.Intersect(second.Match.Hosts ?? [], StringComparer.OrdinalIgnoreCase)));
        }

        if (first.Match.Methods is { Count: > 0 } methods && !SameSet(methods, second.Match.Methods))
        {
            how.Add("both match method " + string.Join(", ", methods.Intersect(second.Match.Methods ?? [], StringComparer.OrdinalIgnoreCase)));
        }

        return how.Count == 0 ? string.Empty : " as routing compares them (" + string.Join("; ", how) + ")";

        static bool SameSet(IReadOnlyList<string> a, IReadOnlyList<string>? b) => b is not null && a.ToHashSet(StringComparer.OrdinalIgnoreCase).SetEquals(b);
    }

    /// <summary>Both empty (no condition), or a value in common; one empty and one not is not an overlap (the one that says more wins).</summary>
    private static bool Overlap(IReadOnlyList<string>? a, IReadOnlyList<string>? b)
        => (a is null or { Count: 0 }) ? b is null or { Count: 0 } : b is { Count: > 0 } && a.Intersect(b, StringComparer.OrdinalIgnoreCase).Any();

    // The match as ASP.NET Core's routing ranks it, but hosts and methods (compared as overlapping sets):
    // the path's shape, headers and query parameters, and the order.
    private static string MatchSignature(RouteConfig route)
    {
        var match = route.Match;
        static string Set(IEnumerable<string>? values) => values is null ? string.Empty
            : string.Join(",", values.Select(v => v.ToLowerInvariant()).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal));
        var headers = match.Headers is null ? string.Empty : string.Join(";", match.Headers.Select(h => $"{h.Name?.ToLowerInvariant()}|{h.Mode}|{h.IsCaseSensitive}|{Set(h.Values)}").Order(StringComparer.Ordinal));
        var query = match.QueryParameters is null ? string.Empty : string.Join(";", match.QueryParameters.Select(q => $"{q.Name?.ToLowerInvariant()}|{q.Mode}|{q.IsCaseSensitive}|{Set(q.Values)}").Order(StringComparer.Ordinal));
        return string.Join("\n", PathShape(match.Path), headers, query, route.Order?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "0");
    }

    /// <summary>
    /// A path pattern as routing matches it: literals without case, each parameter by its kind (catch-all,
    /// optional, with a default) and constraints but not its name. No path is YARP's catch-all. A pattern
    /// that does not parse is left as written (YARP's validator reports it).
    /// </summary>
    internal static string PathShape(string? path)
    {
        RoutePattern pattern;
        try
        {
            pattern = RoutePatternFactory.Parse(path ?? "/{**catchall}");
        }
        catch (RoutePatternException)
        {
            return (path ?? string.Empty).ToLowerInvariant();
        }

        var shape = new System.Text.StringBuilder();
        foreach (var segment in pattern.PathSegments)
        {
            shape.Append('/');
            foreach (var part in segment.Parts)
            {
                switch (part)
                {
                    case RoutePatternLiteralPart literal:
                        shape.Append(literal.Content.ToLowerInvariant());
                        break;
                    case RoutePatternSeparatorPart separator:
                        shape.Append(separator.Content);
                        break;
                    case RoutePatternParameterPart parameter:
                        shape.Append('{').Append(parameter.IsCatchAll ? "**" : string.Empty).Append(parameter.IsOptional ? "?" : string.Empty)
                            .Append(parameter.Default is null ? string.Empty : "=");
                        foreach (var policy in parameter.ParameterPolicies)
                        {
                            shape.Append(':').Append(policy.Content?.ToLowerInvariant());
                        }

                        shape.Append('}');
                        break;
                }
            }
        }

        return shape.ToString();
    }

    /// <summary>
    /// Each constraint in a route's path, created as routing creates it when it builds its table (by name, with its
    /// arguments; a regex compiled, which routing leaves to the first request). One routing cannot create
    /// (<c>{id:nosuchconstraint}</c>, <c>{id:min(abc)}</c>) passed YARP's validation and then failed YARP's apply, and
    /// ASP.NET Core's route table took no later configuration either until a restart (tried: a good reload after it was
    /// logged as applied and never served).
    /// </summary>
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Only the constraints' names are read, for an error message.")]
    private void ValidatePathPolicies(RouteConfig route, string key, List<ConfigError> errors)
    {
        if (string.IsNullOrEmpty(route.Match.Path))
        {
            return;
        }

        RoutePattern pattern;
        try
        {
            pattern = RoutePatternFactory.Parse(route.Match.Path);
        }
        catch (RoutePatternException ex)
        {
            // YARP's own error says only "Invalid path '/x/{id}/{id}' for route 'r'" (and is left out): this one says why.
            errors.Add(new ConfigError(key + ":Match:Path", $"'{route.Match.Path}' is not a route pattern: {ex.Message}"));
            return;
        }

        if (GlobSegment(pattern) is { } glob)
        {
            errors.Add(new ConfigError(key + ":Match:Path", $"'{route.Match.Path}' has the segment '{glob.Text}', which routing reads as the characters themselves, not as a wildcard: the route matches only a request for that path, and every other path under it goes elsewhere (or 404). For every path under '{glob.Above}' write '{glob.Above.TrimEnd('/')}/{{**rest}}'."));
        }

        foreach (var parameter in pattern.Parameters)
        {
            foreach (var reference in parameter.ParameterPolicies)
            {
                if (reference.Content is not { } constraint)
                {
                    continue;
                }

                try
                {
                    if (parameterPolicies.Create(parameter, constraint) is Microsoft.AspNetCore.Routing.Constraints.RegexRouteConstraint regex)
                    {
                        _ = regex.Constraint;
                    }
                }
                catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or FormatException or InvalidCastException or OverflowException or Microsoft.AspNetCore.Routing.RouteCreationException or System.Reflection.TargetInvocationException)
                {
                    var reason = (ex is System.Reflection.TargetInvocationException { InnerException: { } inner } ? inner : ex).Message;
                    var known = string.Join(", ", routeOptions.Value.ConstraintMap.Keys.Order(StringComparer.Ordinal));
                    errors.Add(new ConfigError(key + ":Match:Path", $"'{route.Match.Path}': the constraint '{constraint}' on '{parameter.Name}' cannot be used: {reason} Constraints routing knows: {known}."));
                }
            }
        }
    }

    /// <summary>
    /// The first segment of literal text with a <c>*</c> in it (<c>/api/*</c>, <c>/img/**</c>, <c>/web/.*</c>: nginx's,
    /// Envoy's and Traefik's habits), which routing matches as those characters; a route written so took only the request
    /// for that literal path, and every other under it went to another route or 404, while <c>--check</c> passed it (tried).
    /// </summary>
    internal static (string Text, string Above)? GlobSegment(RoutePattern pattern)
    {
        // The segments as written (a parameter's '?' and constraints kept), when they split as routing split them.
        var written = (pattern.RawText ?? string.Empty).TrimStart('~').Trim('/').Split('/');
        var raw = written.Length == pattern.PathSegments.Count;
        var above = "/";
        for (var i = 0; i < pattern.PathSegments.Count; i++)
        {
            var segment = pattern.PathSegments[i];
            var text = raw ? written[i] : string.Concat(segment.Parts.Select(p => p switch
            {
                RoutePatternLiteralPart literal => literal.Content,
                RoutePatternSeparatorPart separator => separator.Content,
                RoutePatternParameterPart parameter => "{" + parameter.Name + "}",
                _ => string.Empty,
            }));
            if (segment.Parts.Any(p => p is RoutePatternLiteralPart { Content: var content } && content.Contains('*', StringComparison.Ordinal)))
            {
                return (text, above);
            }

            above += text + "/";
        }

        return null;
    }

    /// <summary>
    /// A route's transforms built as YARP's apply builds them. YARP validates their keys but not all of their values, and
    /// a value its build throws on (<c>"HttpMethodChange": "GET", "Set": "G T"</c>, a <c>PathPattern</c> with an unclosed
    /// <c>{</c>, an empty <c>QueryRemoveParameter</c>) failed the apply, which froze the route table until a restart
    /// (tried, each of the three), as a constraint routing cannot create does (<see cref="ValidatePathPolicies"/>).
    /// Whatever the build throws, the apply would have.
    /// </summary>
    private void BuildTransforms(RouteConfig route, IReadOnlyList<ClusterConfig> clusters, string key, List<ConfigError> errors)
    {
        var cluster = clusters.FirstOrDefault(c => string.Equals(c.ClusterId, route.ClusterId, StringComparison.OrdinalIgnoreCase));
        if (TryBuild(route) is null)
        {
            return; // the common case: one build, as the apply's
        }

        var transforms = route.Transforms!;
        for (var i = 0; i < transforms.Count; i++)
        {
            if (TryBuild(route with { Transforms = [transforms[i]] }) is { } failure) // one at a time, to name the one
            {
                errors.Add(new ConfigError($"{key}:Transforms:{i}", $"YARP cannot build this transform: {failure.Message}"));
            }
        }

        Exception? TryBuild(RouteConfig built)
        {
            try
            {
                _ = transformBuilder.Build(built, cluster);
                return null;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                return ex;
            }
        }
    }

    /// <summary>
    /// A route's hosts as ASP.NET Core's routing reads them: a name, or a name and a port (a number or <c>*</c>), split at
    /// ':'. Routing throws on anything else (<c>http://a.com</c>, an IPv6 address) when it builds its table, so one such
    /// host made every request to every route fail with 500 (tried on a reload), where YARP's validation passed it. A host
    /// with a path or other characters no Host header carries (<c>a.com/api</c>) could never match: refused too.
    /// </summary>
    private static void ValidateHosts(RouteConfig route, string key, List<ConfigError> errors)
    {
        if (route.Match.Hosts is not { } hosts)
        {
            return;
        }

        foreach (var host in hosts)
        {
            if (string.IsNullOrEmpty(host))
            {
                continue; // YARP's own validator names it
            }

            var parts = host.Split(':');
            var routable = parts[0].Length > 0 && (parts.Length == 1 || (parts.Length == 2 && (parts[1] == "*" || int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _))));
            if (!routable || host.AsSpan().IndexOfAny(NotInAHost) >= 0)
            {
                errors.Add(new ConfigError(key + ":Match:Hosts", $"'{host}' is not a host a request can match: a name, optionally with a port (api.example.com, api.example.com:8443, *.example.com, api.example.com:*), with no scheme or path{(routable ? string.Empty : "; routing cannot read it, and every request to every route would fail with 500")}."));
            }
            else if (NeverMatches(host, parts[0]) is { } why)
            {
                errors.Add(new ConfigError(key + ":Match:Hosts", $"'{host}' never matches a request: {why}."));
            }
        }
    }

    /// <summary>
    /// Why a host name routing reads could still match no request (both tried: 404 for every Host, without a word), or
    /// null: a trailing dot, which the gateway reads away from a request's Host before routing, and a <c>*</c> anywhere
    /// but as the whole name or a leading label, which no Host header carries (Kestrel answers one with 400).
    /// </summary>
    private static string? NeverMatches(string host, string name)
    {
        if (name == "*")
        {
            return null;
        }

        var wildcard = name.StartsWith("*.", StringComparison.Ordinal);
        var rest = wildcard ? name[2..] : name;
        if (rest.Length == 0 || rest.Contains('*', StringComparison.Ordinal))
        {
            return "a '*' is the whole name (*) or its first label (*.example.com)";
        }

        return RequestFiltering.HostHeader.Without(host) is { } read ? $"the gateway reads a trailing dot away from a request's Host before routing, so write '{read}'" : null;
    }

    /// <summary>
    /// A header a route matches on must be one a request can carry: YARP takes any name, and a route matching
    /// <c>X A</c> never matched anything, without a word (tried).
    /// </summary>
    private static void ValidateHeaderMatches(RouteConfig route, string key, List<ConfigError> errors)
    {
        if (route.Match.Headers is not { } headers)
        {
            return;
        }

        for (var i = 0; i < headers.Count; i++)
        {
            if (!string.IsNullOrEmpty(headers[i].Name) && !HttpSyntax.IsToken(headers[i].Name))
            {
                errors.Add(new ConfigError($"{key}:Match:Headers:{i}:Name", $"'{headers[i].Name}' is not a header name ({HttpSyntax.TokenCharacters}): no request carries it, and the route would never match."));
            }
        }
    }

    /// <summary>
    /// A destination's <c>Address</c> and <c>Health</c> are absolute http or https addresses with no query or fragment (a
    /// query ends up inside the forwarded path), and its <c>Host</c>, when set, one a Host header can carry.
    /// </summary>
    private static void ValidateDestinationAddresses(ClusterConfig cluster, string key, List<ConfigError> errors)
    {
        if (cluster.Destinations is null)
        {
            return;
        }

        foreach (var (id, destination) in cluster.Destinations)
        {
            var addressKey = $"{key}:Destinations:{id}:Address";

            // The Host header sent to the destination: YARP took any text, and every request to it failed with 502 when the
            // header could not be written (tried: a value with a line break).
            if (!string.IsNullOrEmpty(destination.Host)
                && (destination.Host.AsSpan().IndexOfAny(NotInAHost) >= 0 || destination.Host.Any(char.IsControl)
                    || !Uri.TryCreate("http://" + destination.Host + "/", UriKind.Absolute, out var hostUri)
                    || !string.Equals(hostUri.Authority, destination.Host, StringComparison.OrdinalIgnoreCase) && !string.Equals(hostUri.Host, destination.Host, StringComparison.OrdinalIgnoreCase)))
            {
                errors.Add(new ConfigError($"{key}:Destinations:{id}:Host", $"'{destination.Host}' is not a host name or address with an optional port, as a Host header carries it; every request to the destination would fail with 502."));
            }

            // YARP's own validator names a missing Address; a Health address is optional (the probe goes to Address then).
            ValidateAbsoluteAddress(destination.Address, addressKey, isHealth: false, errors);
            ValidateAbsoluteAddress(destination.Health, $"{key}:Destinations:{id}:Health", isHealth: true, errors);
        }
    }

    /// <summary>
    /// The active health probe's <c>Path</c> and <c>Query</c> as YARP's probe builds its request from them. YARP takes any
    /// text, and then (tried) a path without its leading '/' or a query without its '?' failed every probe with an error
    /// and its stack in the log, each destination each interval, leaving the destinations unhealthy; a path with a '?'
    /// was sent escaped (<c>/h%3Fx=1</c>), a path the backend does not have. Its times too, and the passive one's.
    /// </summary>
    private static void ValidateHealthChecks(ClusterConfig cluster, string key, List<ConfigError> errors)
    {
        // A probe interval or timeout, or a passive reactivation period, longer than a timer takes: YARP's apply failed
        // (tried, a 60-day Interval), which froze routing until a restart.
        foreach (var (name, time) in new[] { ("Active:Interval", cluster.HealthCheck?.Active?.Interval), ("Active:Timeout", cluster.HealthCheck?.Active?.Timeout), ("Passive:ReactivationPeriod", cluster.HealthCheck?.Passive?.ReactivationPeriod) })
        {
            if (time > TimeSpans.Max)
            {
                errors.Add(new ConfigError($"{key}:HealthCheck:{name}", $"'{time}' is longer than a timer waits: at most {TimeSpans.MaxText} (about 24 days)."));
            }
        }

        // YARP refuses one of zero or less too, but without its key; said here with it, and YARP's repeat is dropped.
        if (cluster.HealthCheck?.Passive?.ReactivationPeriod is { } period && period <= TimeSpan.Zero)
        {
            errors.Add(new ConfigError(key + ":HealthCheck:Passive:ReactivationPeriod", $"'{period}' must be positive."));
        }

        if (cluster.HealthCheck?.Active is not { } active)
        {
            return;
        }

        if (!string.IsNullOrEmpty(active.Path) && (!active.Path.StartsWith('/') || active.Path.Contains('?', StringComparison.Ordinal) || active.Path.Any(char.IsControl)))
        {
            errors.Add(new ConfigError(key + ":HealthCheck:Active:Path", $"'{active.Path}' is not a probe path: it starts with '/', and a query goes in Query (\"Path\": \"/health\", \"Query\": \"?ready=1\")."));
        }

        if (!string.IsNullOrEmpty(active.Query) && (!active.Query.StartsWith('?') || active.Query.Any(char.IsControl)))
        {
            errors.Add(new ConfigError(key + ":HealthCheck:Active:Query", $"'{active.Query}' is not a probe query: it starts with '?' (\"?ready=1\")."));
        }
    }

    /// <summary>
    /// An absolute http:// or https:// address with no query or fragment. Without "://" the scheme is missing, however the
    /// rest parses ("localhost:5000" reads as the scheme "localhost", "10.0.0.5:8080" as nothing at all): YARP takes either,
    /// and every request to such a destination got 502; for a health address, every probe logged an error with its stack.
    /// </summary>
    private static void ValidateAbsoluteAddress(string? address, string addressKey, bool isHealth, List<ConfigError> errors)
    {
        var what = isHealth ? "a health probe's address" : "a destination";
        if (string.IsNullOrEmpty(address))
        {
            return;
        }

        var hasScheme = address.Contains("://", StringComparison.Ordinal);
        if (!hasScheme || !Uri.TryCreate(address, UriKind.Absolute, out var uri))
        {
            var trimmed = address.Trim();
            var meant = !hasScheme && !trimmed.Contains("//", StringComparison.Ordinal) && !trimmed.StartsWith('/')
                && Uri.TryCreate("http://" + trimmed, UriKind.Absolute, out var withScheme) && withScheme.Host.Length > 0
                ? $"; did you mean 'http://{trimmed}'?" : string.Empty;
            errors.Add(new ConfigError(addressKey, $"'{address}' is not an absolute http:// or https:// address{meant}"));
        }
        else if (uri.Scheme is not ("http" or "https"))
        {
            errors.Add(new ConfigError(addressKey, $"'{address}' has the scheme '{uri.Scheme}'; {what} is an http:// or https:// address."));
        }
        else if (uri.Query.Length > 0 || uri.Fragment.Length > 0)
        {
            errors.Add(new ConfigError(addressKey, $"'{address}' has a query or fragment, which would end up inside every {(isHealth ? "probe's path; a probe's query goes in HealthCheck:Active:Query" : "forwarded path (the backend got /base/?x=1/path); use a route transform to add query parameters")}."));
        }
    }

}
