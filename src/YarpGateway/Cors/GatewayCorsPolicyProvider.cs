using Microsoft.AspNetCore.Cors.Infrastructure;
using YarpGateway.Configuration;

namespace YarpGateway.Cors;

/// <summary>
/// ASP.NET Core's CORS policies, built from the last good <c>Gateway:Cors:Policies</c>: a reload (an origin added, a new
/// policy) applies to the next request. <c>Default</c> is what a route's <c>"CorsPolicy": "Default"</c> uses. A name with
/// no policy gets none, and ASP.NET Core's middleware then adds no CORS header.
/// </summary>
internal sealed class GatewayCorsPolicyProvider : ICorsPolicyProvider, IDisposable
{
    private static readonly string[] SimpleMethods = ["GET", "HEAD", "POST"];
    private static readonly Task<CorsPolicy?> None = Task.FromResult<CorsPolicy?>(null);

    private readonly ReloadableOptions<GatewayCorsOptions> _options;
    private volatile Dictionary<string, Task<CorsPolicy?>> _policies;

    public GatewayCorsPolicyProvider(ReloadableOptions<GatewayCorsOptions> options)
    {
        _options = options;
        _policies = BuildAll(options.Current);
        _options.Changed += Apply;
    }

    /// <summary>
    /// The policy a route names; with no name (a route's <c>"Default"</c>, which YARP turns into CORS metadata without
    /// one), the policy named <c>Default</c>. Asked for <c>Default</c> or <c>Disable</c> by name, none: YARP's validation
    /// asks so to make sure no policy takes a name it reserves.
    /// </summary>
    public Task<CorsPolicy?> GetPolicyAsync(HttpContext context, string? policyName)
    {
        if (policyName is null)
        {
            policyName = RoutePolicyNames.Default;
        }
        else if (RoutePolicyNames.Is(policyName, RoutePolicyNames.Default) || RoutePolicyNames.Is(policyName, RoutePolicyNames.Disable))
        {
            return None;
        }

        return _policies.GetValueOrDefault(policyName) ?? None;
    }

    private void Apply(GatewayCorsOptions options) => _policies = BuildAll(options);

    private static Dictionary<string, Task<CorsPolicy?>> BuildAll(GatewayCorsOptions options)
        => options.Policies.Where(p => p.Value is not null)
            .ToDictionary(p => p.Key, p => Task.FromResult<CorsPolicy?>(Build(p.Value)), StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// An origin as a browser writes it: without its scheme's default port (RFC 6454). ASP.NET Core compares origins as
    /// text, so <c>https://app.example:443</c> matched no browser's <c>Origin</c>, and every cross-origin request from
    /// that page failed in the browser.
    /// </summary>
    internal static string WithoutDefaultPort(string origin)
        => Uri.TryCreate(origin, UriKind.Absolute, out var uri) && uri.IsDefaultPort
            && origin.EndsWith(":" + uri.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
            ? origin[..origin.LastIndexOf(':')]
            : origin;

    internal static CorsPolicy Build(CorsPolicySettings settings)
    {
        var builder = new CorsPolicyBuilder();
        _ = settings.Origins.Contains("*") ? builder.AllowAnyOrigin() : builder.WithOrigins([.. settings.Origins.Select(WithoutDefaultPort)]);
        _ = settings.Methods.Contains("*") ? builder.AllowAnyMethod() : builder.WithMethods(settings.Methods.Count == 0 ? SimpleMethods : [.. settings.Methods]);
        _ = settings.Headers.Contains("*") ? builder.AllowAnyHeader() : builder.WithHeaders([.. settings.Headers]);
        builder.WithExposedHeaders([.. settings.ExposedHeaders]);
        if (settings.Credentials)
        {
            builder.AllowCredentials();
        }

        if (settings.MaxAge is { } maxAge)
        {
            builder.SetPreflightMaxAge(maxAge);
        }

        return builder.Build();
    }

    public void Dispose() => _options.Changed -= Apply;
}
