using System.Globalization;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using YarpGateway.Configuration;

namespace YarpGateway.Security;

/// <summary>
/// JWT bearer authentication from ASP.NET Core's own section, <c>Authentication:Schemes:Bearer</c>
/// (what <c>AddJwtBearer()</c> binds and <c>dotnet user-jwts</c> writes): offline validation with
/// <c>SigningKeys</c>, or <c>Authority</c> for OpenID Connect discovery. No section, no scheme: then a
/// route that asks for authorization is a config error. The checks here are the mistakes ASP.NET Core
/// accepts silently and then refuses every token for (a key whose issuer is not a valid issuer is
/// ignored; no audience fails every token).
/// </summary>
internal static class BearerAuthentication
{
    public const string Scheme = JwtBearerDefaults.AuthenticationScheme;
    public const string SectionName = "Authentication:Schemes:" + Scheme;

    public static bool IsConfigured(IConfiguration configuration) => configuration.GetSection(SectionName).GetChildren().Any();

    public static List<ConfigError> Validate(IConfiguration configuration)
    {
        var errors = new List<ConfigError>();
        var section = configuration.GetSection(SectionName);
        if (!section.GetChildren().Any())
        {
            return errors;
        }

        var authority = section["Authority"];
        var keys = section.GetSection("SigningKeys").GetChildren().ToList();
        if (string.IsNullOrWhiteSpace(authority) && keys.Count == 0)
        {
            errors.Add(new ConfigError(SectionName, "neither SigningKeys (offline validation) nor Authority (OpenID Connect discovery) is set, so no token could be validated; set one of them."));
        }

        if (!string.IsNullOrWhiteSpace(authority))
        {
            var requireHttps = !bool.TryParse(section["RequireHttpsMetadata"], out var require) || require;
            if (!Uri.TryCreate(authority, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            {
                errors.Add(new ConfigError(SectionName + ":Authority", $"'{authority}' is not an absolute http(s) address."));
            }
            else if (requireHttps && uri.Scheme != Uri.UriSchemeHttps)
            {
                errors.Add(new ConfigError(SectionName + ":Authority", $"'{authority}' is not https; set RequireHttpsMetadata to false only for a test issuer."));
            }
        }

        var issuers = section.GetSection("ValidIssuers").GetChildren().Select(c => c.Value).OfType<string>().ToList();
        if (section["ValidIssuer"] is { } issuer)
        {
            issuers.Add(issuer);
        }

        Span<byte> buffer = stackalloc byte[512];
        var keyIssuers = new HashSet<string>(StringComparer.Ordinal);
        foreach (var key in keys)
        {
            var path = string.Create(CultureInfo.InvariantCulture, $"{SectionName}:SigningKeys:{key.Key}");
            var keyIssuer = key["Issuer"];
            if (!string.IsNullOrWhiteSpace(keyIssuer) && !keyIssuers.Add(keyIssuer))
            {
                // ASP.NET Core looks up one key per valid issuer, and throws on a second ("Sequence contains more than one
                // matching element") at every request.
                errors.Add(new ConfigError(path + ":Issuer",
                    $"a second key for '{keyIssuer}'; ASP.NET Core takes one key per issuer. To rotate a key without refusing the tokens signed with the old one, give the new key a new issuer name and list both issuers (see docs/configuration.md, Authentication and authorization)."));
            }

            if (string.IsNullOrWhiteSpace(keyIssuer) || !issuers.Contains(keyIssuer, StringComparer.Ordinal))
            {
                errors.Add(new ConfigError(path + ":Issuer",
                    $"'{keyIssuer}' is not one of ValidIssuer/ValidIssuers ({(issuers.Count == 0 ? "none set" : string.Join(", ", issuers))}); ASP.NET Core uses a key only for a valid issuer, so this key would be ignored."));
            }

            var value = key["Value"];
            if (string.IsNullOrEmpty(value) || !Convert.TryFromBase64String(value, buffer, out var length))
            {
                errors.Add(new ConfigError(path + ":Value", "is not a base64 key (at most 512 bytes)."));
            }
            else if (length < 32)
            {
                errors.Add(new ConfigError(path + ":Value", $"is {length} bytes; an HMAC-SHA256 key must be at least 32 bytes."));
            }
        }

        var validateAudience = !bool.TryParse(section["ValidateAudience"], out var validate) || validate;
        var hasAudience = !string.IsNullOrWhiteSpace(section["ValidAudience"]) || section.GetSection("ValidAudiences").GetChildren().Any();
        if (validateAudience && !hasAudience)
        {
            errors.Add(new ConfigError(SectionName + ":ValidAudiences", "no audience is set, so every token would be refused; list the audiences this gateway accepts (or set ValidateAudience to false)."));
        }

        return errors;
    }
}
