using YarpGateway.Configuration;
using Microsoft.Extensions.Options;

namespace YarpGateway.Security;

/// <summary>Lists every bad policy under <c>Gateway:Authorization</c> at once.</summary>
internal sealed class GatewayAuthorizationOptionsValidator : IValidateOptions<GatewayAuthorizationOptions>
{
    private const string Prefix = GatewayAuthorizationOptions.SectionName + ":Policies:";

    public ValidateOptionsResult Validate(string? name, GatewayAuthorizationOptions options)
    {
        var errors = new List<string>();
        if (options.TokenCacheSize < 0)
        {
            errors.Add($"{GatewayAuthorizationOptions.SectionName}:TokenCacheSize must not be negative (0 turns the cache off); got {options.TokenCacheSize}.");
        }

        foreach (var (policy, settings) in options.Policies)
        {
            if (RoutePolicyNames.IsReservedAuthorization(policy))
            {
                errors.Add($"{Prefix}{policy}: '{policy}' is reserved (a route's \"Default\" is any valid token, \"Anonymous\" no check); give the policy another name.");
            }

            if (settings is null)
            {
                continue;
            }

            Blank(errors, $"{Prefix}{policy}:RequireScopes", settings.RequireScopes);
            Blank(errors, $"{Prefix}{policy}:RequireRoles", settings.RequireRoles);
            foreach (var scope in settings.RequireScopes)
            {
                if (scope is not null && scope.Contains(' ', StringComparison.Ordinal))
                {
                    errors.Add($"{Prefix}{policy}:RequireScopes: '{scope}' contains a space; list each scope as its own entry.");
                }
            }

            foreach (var (claim, values) in settings.RequireClaims)
            {
                if (values is null || values.Count == 0)
                {
                    errors.Add($"{Prefix}{policy}:RequireClaims:{claim} lists no value; list the values that are allowed.");
                    continue;
                }

                Blank(errors, $"{Prefix}{policy}:RequireClaims:{claim}", values);
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void Blank(List<string> errors, string key, List<string> values)
    {
        if (values.Any(string.IsNullOrWhiteSpace))
        {
            errors.Add($"{key} has an empty entry.");
        }
    }
}
