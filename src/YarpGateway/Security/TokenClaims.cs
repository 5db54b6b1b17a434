using System.Security.Claims;

namespace YarpGateway.Security;

/// <summary>Scopes and roles as identity providers write them, whatever the claim mapping.</summary>
internal static class TokenClaims
{
    private static readonly string[] ScopeTypes = ["scope", "scp", "http://schemas.microsoft.com/identity/claims/scope"];
    private static readonly string[] RoleTypes = ["role", "roles", ClaimTypes.Role];

    /// <summary>Every scope in <paramref name="required"/> is granted: in a space-separated <c>scope</c> claim, or one <c>scp</c> claim per scope.</summary>
    public static bool HasScopes(ClaimsPrincipal user, IReadOnlyList<string> required)
    {
        foreach (var scope in required)
        {
            if (!HasValue(user, ScopeTypes, scope, spaceSeparated: true))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>At least one role in <paramref name="roles"/> is granted.</summary>
    public static bool HasAnyRole(ClaimsPrincipal user, IReadOnlyList<string> roles)
    {
        foreach (var role in roles)
        {
            if (HasValue(user, RoleTypes, role, spaceSeparated: false))
            {
                return true;
            }
        }

        return false;
    }

    private static bool HasValue(ClaimsPrincipal user, string[] types, string wanted, bool spaceSeparated)
    {
        foreach (var claim in user.Claims)
        {
            if (Array.IndexOf(types, claim.Type) < 0)
            {
                continue;
            }

            if (string.Equals(claim.Value, wanted, StringComparison.Ordinal))
            {
                return true;
            }

            if (spaceSeparated)
            {
                foreach (var part in claim.Value.AsSpan().Split(' '))
                {
                    if (claim.Value.AsSpan()[part].SequenceEqual(wanted))
                    {
                        return true;
                    }
                }
            }
        }

        return false;
    }
}
