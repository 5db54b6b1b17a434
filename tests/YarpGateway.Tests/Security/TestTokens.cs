using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace YarpGateway.Tests.Security;

/// <summary>An issuer for tests: its key goes into the gateway's config, and it mints tokens signed with it.</summary>
internal sealed class TestTokens
{
    public const string Issuer = "https://login.test/";
    public const string Audience = "orders-api";

    public byte[] Key { get; } = RandomNumberGenerator.GetBytes(32);

    /// <summary>The <c>Authentication</c> section, as <c>dotnet user-jwts</c> writes it.</summary>
    public JsonNode Section() => new JsonObject
    {
        ["Schemes"] = new JsonObject
        {
            ["Bearer"] = new JsonObject
            {
                ["ValidIssuer"] = Issuer,
                ["ValidAudiences"] = new JsonArray(Audience),
                ["SigningKeys"] = new JsonArray(new JsonObject { ["Issuer"] = Issuer, ["Value"] = Convert.ToBase64String(Key) }),
            },
        },
    };

    public string Mint(
        IDictionary<string, object>? claims = null,
        string issuer = Issuer,
        string audience = Audience,
        DateTime? expires = null,
        byte[]? key = null)
    {
        var now = DateTime.UtcNow;
        var descriptor = new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = audience,
            IssuedAt = (expires ?? now.AddMinutes(5)) < now ? now.AddHours(-2) : now,
            NotBefore = (expires ?? now.AddMinutes(5)) < now ? now.AddHours(-2) : now,
            Expires = expires ?? now.AddMinutes(5),
            Claims = claims ?? new Dictionary<string, object> { ["sub"] = "user-1" },
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(key ?? Key), SecurityAlgorithms.HmacSha256),
        };
        return new JsonWebTokenHandler().CreateToken(descriptor);
    }
}
