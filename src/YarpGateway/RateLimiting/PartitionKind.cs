using YarpGateway.Configuration;

namespace YarpGateway.RateLimiting;

/// <summary>A parsed <see cref="RateLimitPolicySettings.PartitionBy"/>.</summary>
internal readonly record struct PartitionKind(PartitionSource Source, string Name)
{
    public static bool TryParse(string? value, out PartitionKind kind) => TryParse(value, out kind, out _);

    /// <param name="reason">Why the value was refused (null when it was taken): the header name no request can carry, or that it is none of the forms.</param>
    public static bool TryParse(string? value, out PartitionKind kind, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? reason)
    {
        const string NoneOfTheForms = "is not ClientIp, Route, Header:<name> or Claim:<type>";
        kind = default;
        reason = null;
        if (string.IsNullOrWhiteSpace(value))
        {
            reason = NoneOfTheForms;
            return false;
        }

        if (value.Equals("ClientIp", StringComparison.OrdinalIgnoreCase))
        {
            kind = new(PartitionSource.ClientIp, string.Empty);
            return true;
        }

        if (value.Equals("Route", StringComparison.OrdinalIgnoreCase))
        {
            kind = new(PartitionSource.Route, string.Empty);
            return true;
        }

        var colon = value.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0 || colon == value.Length - 1)
        {
            reason = NoneOfTheForms;
            return false;
        }

        var name = value[(colon + 1)..].Trim();
        var prefix = value[..colon];
        if (prefix.Equals("Header", StringComparison.OrdinalIgnoreCase))
        {
            if (!HttpSyntax.IsToken(name))
            {
                reason = $"does not name a header: a header name is {HttpSyntax.TokenCharacters}";
                return false;
            }

            kind = new(PartitionSource.Header, name);
            return true;
        }

        if (prefix.Equals("Claim", StringComparison.OrdinalIgnoreCase) && name.Length > 0)
        {
            kind = new(PartitionSource.Claim, name);
            return true;
        }

        reason = NoneOfTheForms;
        return false;
    }
}

internal enum PartitionSource
{
    ClientIp,
    Header,
    Claim,
    Route,
}
