using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Security;

/// <summary>
/// <c>Authority</c>: keys found by OpenID Connect discovery, from an issuer on loopback serving its
/// discovery document and an RSA key set (RS256 tokens, as identity providers sign them).
/// </summary>
public class OpenIdDiscoveryTests
{
    [Fact]
    public async Task WithAnAuthority_TokensSignedByItsPublishedKey_AreAccepted_OthersRefused()
    {
        using var rsa = RSA.Create(2048);
        var signingKey = new RsaSecurityKey(rsa) { KeyId = "k1" };
        await using var issuer = await StartIssuerAsync(signingKey);
        var authority = issuer.Urls.Single().TrimEnd('/') + "/";

        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]!["AuthorizationPolicy"] = "Default";
        config["Authentication"] = new JsonObject
        {
            ["Schemes"] = new JsonObject
            {
                ["Bearer"] = new JsonObject
                {
                    ["Authority"] = authority,
                    ["RequireHttpsMetadata"] = false, // a loopback test issuer
                    ["ValidAudiences"] = new JsonArray("orders-api"),
                },
            },
        };
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        using var otherRsa = RSA.Create(2048);
        var cases = new (SecurityKey Key, string Issuer, HttpStatusCode Expected)[]
        {
            (signingKey, authority, HttpStatusCode.OK),
            (new RsaSecurityKey(otherRsa) { KeyId = "k1" }, authority, HttpStatusCode.Unauthorized),
            (signingKey, "https://elsewhere.test/", HttpStatusCode.Unauthorized),
        };
        foreach (var (key, iss, expected) in cases)
        {
            var token = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
            {
                Issuer = iss,
                Audience = "orders-api",
                Expires = DateTime.UtcNow.AddMinutes(5),
                Claims = new Dictionary<string, object> { ["sub"] = "u" },
                SigningCredentials = new SigningCredentials(key, SecurityAlgorithms.RsaSha256),
            });
            using var request = new HttpRequestMessage(HttpMethod.Get, "/x");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var response = await client.SendAsync(request);
            Assert.Equal(expected, response.StatusCode);
        }

        Assert.Equal(1, backend.Requests);
    }

    private static async Task<WebApplication> StartIssuerAsync(RsaSecurityKey key)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Services.AddRoutingCore();
        var app = builder.Build();
        var jwk = JsonWebKeyConverter.ConvertFromRSASecurityKey(key);
        app.Run(async context =>
        {
            var self = $"{context.Request.Scheme}://{context.Request.Host}/";
            JsonNode body = context.Request.Path.Value switch
            {
                "/.well-known/openid-configuration" => new JsonObject { ["issuer"] = self, ["jwks_uri"] = self + "jwks" },
                "/jwks" => new JsonObject
                {
                    ["keys"] = new JsonArray(new JsonObject { ["kty"] = "RSA", ["use"] = "sig", ["kid"] = jwk.Kid, ["n"] = jwk.N, ["e"] = jwk.E }),
                },
                _ => new JsonObject(),
            };
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(body.ToJsonString(), context.RequestAborted);
        });
        await app.StartAsync();
        _ = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>();
        return app;
    }
}
