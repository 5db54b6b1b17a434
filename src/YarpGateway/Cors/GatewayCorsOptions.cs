namespace YarpGateway.Cors;

/// <summary>
/// <c>Gateway:Cors</c>: the CORS policies a route names in <c>CorsPolicy</c>. A policy named
/// <c>Default</c> is what a route's <c>"CorsPolicy": "Default"</c> uses. Reloads (<see cref="GatewayCorsPolicyProvider"/>);
/// whether any policy exists is read at start-up.
/// </summary>
internal sealed class GatewayCorsOptions
{
    public const string SectionName = "Gateway:Cors";

    /// <summary>Policies by name (case-insensitive). Default: none, and then no CORS middleware runs.</summary>
    public Dictionary<string, CorsPolicySettings> Policies { get; set; } = new(StringComparer.OrdinalIgnoreCase);
}

/// <summary>One CORS policy, answered by the gateway (preflights never reach a backend).</summary>
internal sealed class CorsPolicySettings
{
    /// <summary>Allowed origins, <c>scheme://host[:port]</c>, or <c>*</c> for any (not with <see cref="Credentials"/>). Required.</summary>
    public List<string> Origins { get; set; } = [];

    /// <summary>Allowed methods, or <c>*</c>. Empty (the default): GET, HEAD and POST.</summary>
    public List<string> Methods { get; set; } = [];

    /// <summary>Request headers a caller may send, or <c>*</c>. Empty (the default): only the CORS-safelisted ones.</summary>
    public List<string> Headers { get; set; } = [];

    /// <summary>Response headers the browser lets the script read. Default: none beyond the safelisted ones.</summary>
    public List<string> ExposedHeaders { get; set; } = [];

    /// <summary>Whether cookies and credentials may be sent. Default false.</summary>
    public bool Credentials { get; set; }

    /// <summary>How long a browser may cache a preflight's answer. Default: unset (the browser's own, 5 s in Chromium).</summary>
    public TimeSpan? MaxAge { get; set; }
}
