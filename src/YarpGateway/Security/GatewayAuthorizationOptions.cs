namespace YarpGateway.Security;

/// <summary>
/// <c>Gateway:Authorization</c>: the authorization policies a route names in <c>AuthorizationPolicy</c>.
/// Read at start-up (a change on disk is reported and applied by a restart).
/// </summary>
internal sealed class GatewayAuthorizationOptions
{
    public const string SectionName = "Gateway:Authorization";

    /// <summary>Policies by name (case-insensitive). <c>Default</c> and <c>Anonymous</c> are reserved. Default: none.</summary>
    public Dictionary<string, AuthorizationPolicySettings> Policies { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Bearer tokens remembered once validated (<see cref="ValidatedTokenCache"/>); 0 turns the cache off. Default 10,000.</summary>
    public int TokenCacheSize { get; set; } = 10_000;
}

/// <summary>
/// One policy: a valid bearer token, and everything listed here (each list empty by default).
/// </summary>
internal sealed class AuthorizationPolicySettings
{
    /// <summary>Every scope here must be in the token's <c>scope</c> or <c>scp</c> claim (space-separated values or one claim per scope).</summary>
    public List<string> RequireScopes { get; set; } = [];

    /// <summary>At least one of these roles, from the token's <c>role</c> or <c>roles</c> claim.</summary>
    public List<string> RequireRoles { get; set; } = [];

    /// <summary>For each claim type, the token has that claim with one of the values listed.</summary>
    public Dictionary<string, List<string>> RequireClaims { get; set; } = new(StringComparer.Ordinal);
}
