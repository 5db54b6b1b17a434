using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using YarpGateway.Configuration;

namespace YarpGateway.OutputCaching;

/// <summary>
/// The configured policies' settings, from <c>Gateway:OutputCache:Policies</c>, for <see cref="ReloadableOutputCachePolicy"/>.
/// A reload's settings apply to the policies the gateway started with (<see cref="PolicyKeys.Live"/>); a
/// policy added or removed, <c>SizeLimit</c> and <c>MaximumBodySize</c> take a restart.
/// </summary>
internal sealed class OutputCachePolicies : IDisposable
{
    /// <summary>How <see cref="StartupOnlySections"/> names the part read at start-up.</summary>
    public const string ReadAtStartPart = GatewayOutputCacheOptions.SectionName + " (which policies exist, SizeLimit and MaximumBodySize)";

    private readonly ReloadableOptions<GatewayOutputCacheOptions> _reloadable;
    private volatile Dictionary<string, PolicySettings> _policies;

    public OutputCachePolicies(IOptions<GatewayOutputCacheOptions> options, ReloadableOptions<GatewayOutputCacheOptions> reloadable)
    {
        _policies = options.ValueOrNew().Policies.ToDictionary(p => p.Key, p => new PolicySettings(p.Value ?? new()), StringComparer.OrdinalIgnoreCase);
        _reloadable = reloadable;
        _reloadable.Changed += Apply;
    }

    /// <summary>The settings in force for the policy named <paramref name="name"/>; null for a name the gateway did not start with.</summary>
    public PolicySettings? Current(string name) => _policies.GetValueOrDefault(name);

    /// <summary>What is read at start-up: which policies exist, and the sizes (the store and ASP.NET Core's middleware take them once).</summary>
    public static IReadOnlyDictionary<string, string> ReadAtStart(IConfiguration configuration)
    {
        var section = configuration.GetSection(GatewayOutputCacheOptions.SectionName);
        var keys = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var name in PolicyKeys.Names(section))
        {
            keys[PolicyKeys.Policies + name] = "defined";
        }

        foreach (var size in (ReadOnlySpan<string>)[nameof(GatewayOutputCacheOptions.SizeLimit), nameof(GatewayOutputCacheOptions.MaximumBodySize)])
        {
            if (section[size] is { } value)
            {
                keys[size] = value;
            }
        }

        return keys;
    }

    private void Apply(GatewayOutputCacheOptions options)
    {
        var next = new Dictionary<string, PolicySettings>(_policies, StringComparer.OrdinalIgnoreCase);
        foreach (var name in _policies.Keys)
        {
            if (options.Policies.TryGetValue(name, out var settings) && settings is not null)
            {
                next[name] = new PolicySettings(settings);
            }
        }

        _policies = next;
    }

    public void Dispose() => _reloadable.Changed -= Apply;

    /// <summary>One policy's settings as the request path reads them.</summary>
    internal sealed class PolicySettings(OutputCachePolicySettings settings)
    {
        public TimeSpan Duration { get; } = settings.Duration;

        public bool Locking { get; } = settings.Locking;

        public StringValues QueryKeys { get; } = new([.. settings.VaryByQuery]);

        public StringValues HeaderNames { get; } = new([.. settings.VaryByHeader]);

        /// <summary>Whether a request with a <c>Cookie</c> header skips the cache: unless the policy allows it or keys on the cookie.</summary>
        public bool SkipsRequestsWithCookies { get; } = !settings.CacheRequestsWithCookies
            && !settings.VaryByHeader.Contains(Microsoft.Net.Http.Headers.HeaderNames.Cookie, StringComparer.OrdinalIgnoreCase);
    }
}
