using System.Diagnostics.CodeAnalysis;
using System.Security.Authentication;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;

namespace YarpGateway.Configuration;

/// <summary>
/// Reads the <c>ReverseProxy</c> section, in YARP's own schema, into route and cluster records.
/// Each property is read on its own so that one bad value yields one error naming its key, and every
/// bad value in the file is reported at once (YARP's reader stops at the first).
/// </summary>
internal static class ProxyConfigReader
{
    public const string SectionName = "ReverseProxy";

    public static ProxyConfigReadResult Read(IConfiguration configuration)
    {
        var section = configuration.GetSection(SectionName);
        var errors = new List<ConfigError>();

        var routes = new List<RouteConfig>();
        foreach (var routeSection in section.GetSection("Routes").GetChildren())
        {
            routes.Add(ReadRoute(routeSection, errors));
        }

        var clusters = new List<ClusterConfig>();
        foreach (var clusterSection in section.GetSection("Clusters").GetChildren())
        {
            clusters.Add(ReadCluster(clusterSection, errors));
        }

        return new ProxyConfigReadResult(routes, clusters, errors);
    }

    /// <summary>
    /// A route's <c>MaxRequestBodySize</c>, mirrored in its <c>Metadata</c> under this key. YARP's <c>RouteConfig.Equals</c>
    /// leaves the size out, so an edit of it alone was no change to the gateway's provider nor to YARP: nothing was logged,
    /// and the route kept its old limit until a restart (tried: 10 raised to 100 000, and a 20-byte upload still got 413).
    /// <c>Metadata</c> is compared, so the mirror makes the edit a change of the route. Nothing reads the key.
    /// </summary>
    internal const string MaxRequestBodySizeMirror = "YarpGateway.MaxRequestBodySize";

    private static RouteConfig ReadRoute(IConfigurationSection section, List<ConfigError> errors)
    {
        var maxRequestBodySize = Get<long?>(section, nameof(RouteConfig.MaxRequestBodySize), errors);
        var metadata = ReadDictionary(section.GetSection(nameof(RouteConfig.Metadata)));
        if (maxRequestBodySize is { } size)
        {
            metadata ??= new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            metadata[MaxRequestBodySizeMirror] = size.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return new()
        {
            RouteId = section.Key,
            ClusterId = section[nameof(RouteConfig.ClusterId)],
            Order = Get<int?>(section, nameof(RouteConfig.Order), errors),
            MaxRequestBodySize = maxRequestBodySize,
            AuthorizationPolicy = section[nameof(RouteConfig.AuthorizationPolicy)],
            RateLimiterPolicy = section[nameof(RouteConfig.RateLimiterPolicy)],
            TimeoutPolicy = section[nameof(RouteConfig.TimeoutPolicy)],
            Timeout = Get<TimeSpan?>(section, nameof(RouteConfig.Timeout), errors),
            CorsPolicy = section[nameof(RouteConfig.CorsPolicy)],
            OutputCachePolicy = section[nameof(RouteConfig.OutputCachePolicy)],
            Match = Get<RouteMatch>(section, nameof(RouteConfig.Match), errors) ?? MatchFallback(section.GetSection(nameof(RouteConfig.Match))),
            Metadata = metadata,
            Transforms = ReadTransforms(section.GetSection(nameof(RouteConfig.Transforms))),
        };
    }

    /// <summary>
    /// A match that did not read (its errors are listed) as far as its path and hosts, which are text and always read: YARP's
    /// validation of the route then adds no error of its own ("requires Hosts or Path") for a match that has them.
    /// </summary>
    private static RouteMatch MatchFallback(IConfigurationSection match) => new()
    {
        Path = match[nameof(RouteMatch.Path)],
        Hosts = match.GetSection(nameof(RouteMatch.Hosts)).GetChildren().Select(host => host.Value).OfType<string>().ToList() is { Count: > 0 } hosts ? hosts : null,
    };

    private static ClusterConfig ReadCluster(IConfigurationSection section, List<ConfigError> errors) => new()
    {
        ClusterId = section.Key,
        LoadBalancingPolicy = section[nameof(ClusterConfig.LoadBalancingPolicy)],
        SessionAffinity = Get<SessionAffinityConfig>(section, nameof(ClusterConfig.SessionAffinity), errors),
        HealthCheck = Get<HealthCheckConfig>(section, nameof(ClusterConfig.HealthCheck), errors),
        HttpClient = ReadHttpClient(section.GetSection(nameof(ClusterConfig.HttpClient)), errors),
        HttpRequest = ReadHttpRequest(section.GetSection(nameof(ClusterConfig.HttpRequest)), errors),
        Destinations = ReadDestinations(section.GetSection(nameof(ClusterConfig.Destinations)), errors),
        Metadata = ReadDictionary(section.GetSection(nameof(ClusterConfig.Metadata))),
    };

    private static Dictionary<string, DestinationConfig>? ReadDestinations(IConfigurationSection section, List<ConfigError> errors)
    {
        if (!section.Exists())
        {
            return null;
        }

        var destinations = new Dictionary<string, DestinationConfig>(StringComparer.OrdinalIgnoreCase);
        foreach (var destination in section.GetChildren())
        {
            destinations[destination.Key] = new DestinationConfig
            {
                Address = destination[nameof(DestinationConfig.Address)] ?? string.Empty,
                Health = destination[nameof(DestinationConfig.Health)],
                Host = destination[nameof(DestinationConfig.Host)],
                Metadata = ReadDictionary(destination.GetSection(nameof(DestinationConfig.Metadata))),
            };
        }

        return destinations;
    }

    private static HttpClientConfig? ReadHttpClient(IConfigurationSection section, List<ConfigError> errors)
    {
        if (!section.Exists())
        {
            return null;
        }

        var config = Get<HttpClientConfig>(section, errors) ?? new HttpClientConfig();

        // YARP accepts SslProtocols as a list of names ("Tls12", "Tls13"); the binder reads only a single value.
        var protocols = section.GetSection(nameof(HttpClientConfig.SslProtocols));
        var names = protocols.GetChildren().Select(c => (Key: c.Path, c.Value)).ToList();
        if (protocols.Value is { } single)
        {
            names.Add((protocols.Path, single));
        }

        if (names.Count == 0)
        {
            return config;
        }

        var combined = SslProtocols.None;
        foreach (var (key, value) in names)
        {
            if (Enum.TryParse<SslProtocols>(value, ignoreCase: true, out var parsed) && value is not null && !int.TryParse(value, out _))
            {
                combined |= parsed;
            }
            else
            {
                errors.Add(new ConfigError(key, $"'{value}' is not an SSL protocol; use names such as Tls12 or Tls13."));
            }
        }

        return config with { SslProtocols = combined };
    }

    private static ForwarderRequestConfig? ReadHttpRequest(IConfigurationSection section, List<ConfigError> errors)
    {
        if (!section.Exists())
        {
            return null;
        }

        Version? version = null;
        var versionText = section[nameof(ForwarderRequestConfig.Version)];
        if (!string.IsNullOrEmpty(versionText))
        {
            // YARP's own reader accepts "2" as well as "2.0".
            var normalized = versionText.Contains('.', StringComparison.Ordinal) ? versionText : versionText + ".0";
            if (!Version.TryParse(normalized, out version) || version is not { Major: 1 or 2 or 3 })
            {
                errors.Add(new ConfigError(section.Path + ":Version", $"'{versionText}' is not an HTTP version; use 1.0, 1.1, 2 or 3."));
                version = null;
            }
        }

        return new ForwarderRequestConfig
        {
            ActivityTimeout = Get<TimeSpan?>(section, nameof(ForwarderRequestConfig.ActivityTimeout), errors),
            Version = version,
            VersionPolicy = Get<HttpVersionPolicy?>(section, nameof(ForwarderRequestConfig.VersionPolicy), errors),
            AllowResponseBuffering = Get<bool?>(section, nameof(ForwarderRequestConfig.AllowResponseBuffering), errors),
        };
    }

    private static List<IReadOnlyDictionary<string, string>>? ReadTransforms(IConfigurationSection section)
    {
        if (!section.Exists())
        {
            return null;
        }

        return section.GetChildren()
            .Select(t => (IReadOnlyDictionary<string, string>)t.GetChildren()
                .ToDictionary(kv => kv.Key, kv => kv.Value ?? string.Empty, StringComparer.OrdinalIgnoreCase))
            .ToList();
    }

    private static Dictionary<string, string>? ReadDictionary(IConfigurationSection section)
    {
        if (!section.Exists())
        {
            return null;
        }

        return section.GetChildren().ToDictionary(c => c.Key, c => c.Value ?? string.Empty, StringComparer.OrdinalIgnoreCase);
    }

    private static T? Get<T>(IConfigurationSection parent, string name, List<ConfigError> errors)
        => Get<T>(parent.GetSection(name), errors);

    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = KeptForReflection.Justification)]
    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = KeptForReflection.Justification)]
    private static T? Get<T>(IConfigurationSection section, List<ConfigError> errors)
    {
        if (!section.Exists())
        {
            return default;
        }

        // The binder drops an item of a list whose value does not convert, without a word: a route header match with a
        // Mode of "Exactly" was gone, and the route matched every request whatever its headers. And it takes any number
        // for an enum. Each such value, the section's own included, is an error.
        var convertible = new List<KeyValuePair<string, string?>>();
        if (OptionsBindingErrors.Unconvertible(typeof(T), section, convertible) is { Count: > 0 } unconvertible)
        {
            errors.AddRange(unconvertible);
            return Rest<T>(convertible);
        }

        try
        {
            return section.Get<T>();
        }
        catch (InvalidOperationException ex)
        {
            // A scalar: say what the value is and what it should be. Anything else: the binder's words.
            var message = section.Value is { } value
                ? $"'{value}' is not {ExpectedValue.Describe(typeof(T))}."
                : $"cannot be read as {ExpectedValue.Describe(typeof(T))}: {ex.Message}";
            errors.Add(new ConfigError(section.Path, message));
            return default;
        }
    }

    /// <summary>
    /// A section whose values did not all convert, read from the rest (each of those is an error already, and the
    /// configuration is not applied), so that YARP's validation still lists what else is wrong in it. Until 2026-12-07 such
    /// a section was dropped whole: a <c>SessionAffinity</c> with a bad <c>Cookie:MaxAge</c> hid its unknown <c>Policy</c>
    /// and negative <c>Expiration</c>, each found only once the one before it was fixed.
    /// </summary>
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = KeptForReflection.Justification)]
    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = KeptForReflection.Justification)]
    private static T? Rest<T>(List<KeyValuePair<string, string?>> convertible)
    {
        if (convertible.Count == 0)
        {
            return default;
        }

        try
        {
            return new ConfigurationBuilder().AddInMemoryCollection(convertible).Build().Get<T>();
        }
        catch (InvalidOperationException)
        {
            return default; // something the walk does not model; the conversion errors still stand
        }
    }
}

/// <summary>What <see cref="ProxyConfigReader"/> read, and what it could not.</summary>
internal sealed record ProxyConfigReadResult(
    IReadOnlyList<RouteConfig> Routes,
    IReadOnlyList<ClusterConfig> Clusters,
    IReadOnlyList<ConfigError> Errors);
