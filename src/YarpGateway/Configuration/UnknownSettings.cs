using System.ComponentModel;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Configuration;

namespace YarpGateway.Configuration;

/// <summary>
/// Keys under <c>ReverseProxy</c>, <c>Gateway</c>, <c>Kestrel</c> and <c>Kestrel:Limits</c> that no setting reads: a typo
/// (<c>LoadBalancerPolicy</c>, <c>Gateway:Admision</c>) would otherwise be ignored without a word, and
/// the cluster would run on the default policy. In <c>Metadata</c> and at the top level, where any
/// key is allowed, a key one or two letters away from one that is read (<c>Wieght</c>,
/// <c>ReverseProxi</c>) is named too. Logged once at start-up and again whenever a reload changes
/// the list, each with the nearest known name. A warning, not an error: YARP itself ignores
/// unknown keys, and a <c>ReverseProxy</c> section written for it must keep working unchanged.
/// </summary>
internal sealed partial class UnknownSettings : IDisposable
{
    /// <summary>The keys under <c>Kestrel</c> something reads.</summary>
    private static readonly HashSet<string> KestrelKeys = new(["Endpoints", "EndpointDefaults", "Certificates", "Limits"], StringComparer.OrdinalIgnoreCase);

    /// <summary>The top-level sections the gateway, YARP and ASP.NET Core read.</summary>
    private static readonly HashSet<string> KnownSections = new(["ReverseProxy", "Gateway", "Kestrel", "Logging", "AllowedHosts", "Authentication"], StringComparer.OrdinalIgnoreCase);

    private readonly IConfiguration _configuration;
    private readonly SectionCopies _copies;
    private readonly Schema _schema;
    private readonly HashSet<string> _metadataKeys;
    private readonly ILogger<UnknownSettings> _logger;
    private readonly IDisposable _subscription;
    private readonly Lock _gate = new();
    private string _reported = string.Empty;

    public UnknownSettings(IConfiguration configuration, SectionCopies copies, Schema schema, IEnumerable<IProxyConfigRule> rules, ILogger<UnknownSettings> logger)
    {
        _configuration = configuration;
        _copies = copies;
        _schema = schema;
        _metadataKeys = MetadataKeysOf(rules);
        _logger = logger;
        Check();
        _subscription = ChangeToken.OnChange(configuration.GetReloadToken, Check);
    }

    /// <summary>The route and cluster <c>Metadata</c> keys the gateway's rules read: known, whatever YARP makes of them.</summary>
    public static HashSet<string> MetadataKeysOf(IEnumerable<IProxyConfigRule> rules)
        => rules.SelectMany(rule => rule.MetadataKeys).ToHashSet(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Every unknown key, with the nearest known name at its level where one is close; the routes and clusters from
    /// <paramref name="proxy"/> if given (a copy of the section, <see cref="SectionCopy"/>), else from <paramref name="configuration"/>.
    /// </summary>
    public static List<string> Find(IConfiguration configuration, Schema schema, IReadOnlySet<string> metadataKeys, IConfiguration? proxy = null)
    {
        var gatewaySections = schema.GatewaySections;
        var found = new List<string>();
        TopLevelNearMisses(configuration, found);
        Walk((proxy ?? configuration).GetSection(ProxyConfigReader.SectionName), typeof(ReverseProxyShape), found, metadataKeys);
        Walk(configuration.GetSection(Endpoints.GatewayKestrelSetup.LimitsSection), typeof(Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerLimits), found, metadataKeys);

        // Kestrel reads its endpoints, their defaults and certificates from the section; the gateway, its limits. Nothing
        // binds the rest (tried: "AllowSynchronousIO": "maybe" started without a word, as did AddServerHeader, which the
        // gateway turns off itself).
        foreach (var key in configuration.GetSection("Kestrel").GetChildren().Where(child => !KestrelKeys.Contains(child.Key)))
        {
            found.Add(Describe(key.Path, key.Key, KestrelKeys));
        }

        foreach (var section in configuration.GetSection("Gateway").GetChildren())
        {
            if (gatewaySections.TryGetValue(section.Path, out var type))
            {
                Walk(section, type, found, metadataKeys);
            }
            else
            {
                found.Add(Describe(section.Path, section.Key, gatewaySections.Keys.Select(path => path[(path.LastIndexOf(':') + 1)..])));
            }
        }

        return found;
    }

    private void Check()
    {
        lock (_gate)
        {
            if (ConfigSourceLocator.FindBrokenFiles(_configuration).Count > 0)
            {
                return; // a broken file reads as empty; the proxy configuration's rejection says so
            }

            var found = Find(_configuration, _schema, _metadataKeys, _copies.Of(ProxyConfigReader.SectionName).Configuration);
            var text = string.Join("; ", found);
            if (text == _reported)
            {
                return;
            }

            _reported = text;
            if (found.Count > 0)
            {
                Log.Unknown(_logger, found.Count, text);
            }
        }
    }

    // The children of a section bound to type: unknown names are reported, known ones walked into.
    [UnconditionalSuppressMessage("Trimming", "IL2070", Justification = KeptForReflection.Justification)]
    private static void Walk(IConfigurationSection section, Type type, List<string> found, IReadOnlySet<string> metadataKeys)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (IsValue(type))
        {
            return; // a value: a child under it is YARP's or the binder's business (none of ours)
        }

        if (OptionsBindingErrors.ItemType(type) is { } item)
        {
            foreach (var child in section.GetChildren())
            {
                Walk(child, item, found, metadataKeys); // a dictionary's key or a list's index: any is fine
            }

            return;
        }

        // Settable properties, and get-only ones the binder fills in place (a collection or an object); Kestrel's data rates,
        // which have no setters, are read by Endpoints.GatewayKestrelSetup.DataRate.
        var properties = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite || !IsValue(p.PropertyType) || type == typeof(Microsoft.AspNetCore.Server.Kestrel.Core.MinDataRate)).ToList();
        foreach (var child in section.GetChildren())
        {
            var property = properties.Find(p => string.Equals(p.Name, child.Key, StringComparison.OrdinalIgnoreCase));
            if (property is null)
            {
                found.Add(Describe(child.Path, child.Key, properties.Select(p => p.Name)));
            }
            else if (property.Name == nameof(RouteConfig.Metadata) && metadataKeys.Count > 0)
            {
                NearMisses(child, metadataKeys, found);
            }
            else
            {
                Walk(child, property.PropertyType, found, metadataKeys);
            }
        }
    }

    // Metadata takes any key (other tools keep theirs there): only a key one or two letters from one
    // a feature reads is named.
    private static void NearMisses(IConfigurationSection metadata, IReadOnlySet<string> known, List<string> found)
    {
        foreach (var child in metadata.GetChildren())
        {
            if (NearMiss(child.Key, known) is { } name)
            {
                found.Add($"{child.Path} (did you mean {name}?)");
            }
        }
    }

    // The top level takes any key too (environment variables are keys there): a key a file or the
    // command line sets, one or two letters from a section something reads, is named. "ReverseProxi"
    // would otherwise leave every route in it unread, without a word.
    private static void TopLevelNearMisses(IConfiguration configuration, List<string> found)
    {
        if (configuration is not IConfigurationRoot root)
        {
            return;
        }

        var keys = root.Providers
            .Where(p => IndexedConfigurationSource.Unwrapped(p) is not Microsoft.Extensions.Configuration.EnvironmentVariables.EnvironmentVariablesConfigurationProvider and not ChainedConfigurationProvider)
            .SelectMany(p => p.GetChildKeys([], null))
            .Distinct(StringComparer.OrdinalIgnoreCase);
        foreach (var key in keys)
        {
            if (NearMiss(key, KnownSections) is { } name)
            {
                found.Add($"{key} (did you mean {name}?)");
            }
        }
    }

    /// <summary>The known name one or two letters from <paramref name="key"/>, if the key is not known itself.</summary>
    private static string? NearMiss(string key, IReadOnlySet<string> known)
    {
        if (known.Contains(key))
        {
            return null;
        }

        var nearest = known.Select(k => (Name: k, Distance: Distance(key.ToUpperInvariant(), k.ToUpperInvariant()))).MinBy(k => k.Distance);
        return nearest.Distance is > 0 and <= 2 ? nearest.Name : null;
    }

    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = KeptForReflection.Justification)]
    [UnconditionalSuppressMessage("Trimming", "IL2067", Justification = KeptForReflection.Justification)]
    private static bool IsValue(Type type)
        => type == typeof(string) || type == typeof(object) || type.IsPrimitive || type.IsEnum || TypeDescriptor.GetConverter(type).CanConvertFrom(typeof(string));

    private static string Describe(string path, string key, IEnumerable<string> known)
    {
        var nearest = known.Select(k => (Name: k, Distance: Distance(key.ToUpperInvariant(), k.ToUpperInvariant())))
            .Where(k => k.Distance <= Math.Max(2, key.Length / 4))
            .OrderBy(k => k.Distance)
            .Select(k => k.Name)
            .FirstOrDefault();
        return nearest is null ? path : $"{path} (did you mean {nearest}?)";
    }

    // Levenshtein distance: two rows.
    private static int Distance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }

    public void Dispose() => _subscription.Dispose();

    /// <summary>
    /// The <c>Gateway:*</c> sections and the options types they bind to: given by the composition root, which registers
    /// every feature (a test checks that none is missing).
    /// </summary>
    internal sealed class Schema(params GatewaySection[] sections)
    {
        public IReadOnlyList<GatewaySection> Sections { get; } = sections;

        public IReadOnlyDictionary<string, Type> GatewaySections { get; } = sections.ToDictionary(s => s.Path, s => s.Type, StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>The <c>ReverseProxy</c> section as <see cref="ProxyConfigReader"/> reads it: YARP's own records, keyed by id.</summary>
    private sealed class ReverseProxyShape
    {
        public Dictionary<string, RouteConfig>? Routes { get; set; }

        public Dictionary<string, ClusterConfig>? Clusters { get; set; }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "{Count} setting(s) in the configuration are read by neither the gateway nor YARP, so they change nothing: {Keys}.", EventName = "UnknownSettings")]
        public static partial void Unknown(ILogger logger, int count, string keys);
    }
}
