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
        await using var gateway = await GatewayUnderTest.StartAsync(ConfigWithAuthority(backend, authority));
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
            using var response = await SendAsync(client, Token(key, iss));
            Assert.Equal(expected, response.StatusCode);
        }

        Assert.Equal(1, backend.Requests);
    }

    [Fact]
    public async Task WhileTheIssuersKeysCannotBeFetched_ATokenGets503WithRetryAfter_NotA401_AndIsAcceptedOnceTheyCan()
    {
        // Tried on the Release build: with the identity provider down when the gateway started, every
        // token was refused with 401 "The issuer ... is invalid", and the log said wrong_issuer.
        using var rsa = RSA.Create(2048);
        var signingKey = new RsaSecurityKey(rsa) { KeyId = "k1" };
        var up = false;
        await using var issuer = await StartIssuerAsync(signingKey, () => Volatile.Read(ref up));
        var authority = issuer.Urls.Single().TrimEnd('/') + "/";

        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ConfigWithAuthority(backend, authority));
        using var client = gateway.CreateProxyClient();
        var token = Token(signingKey, authority);

        using (var down = await SendAsync(client, token))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, down.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(5), down.Headers.RetryAfter?.Delta);
            Assert.Contains("signing keys could not be fetched", await down.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using (var noToken = await SendAsync(client, null))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, noToken.StatusCode); // no token is no token, whatever the issuer's state
        }

        Assert.Equal(1, gateway.Counter("gateway.auth.refused|route=all|status=503|reason=issuer_unavailable"));
        Assert.Equal(0, backend.Requests);

        Volatile.Write(ref up, true);
        Assert.True(await Eventually.TrueAsync(async () =>
        {
            using var response = await SendAsync(client, token);
            return response.StatusCode == HttpStatusCode.OK;
        }, TimeSpan.FromSeconds(30)), "the token was not accepted once the issuer answered");
    }

    /// <summary>One catch-all route that needs a valid token (<c>Default</c>), its keys found from <paramref name="authority"/>.</summary>
    private static JsonObject ConfigWithAuthority(TestBackend backend, string authority)
    {
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
        return config;
    }

    private static string Token(SecurityKey key, string issuer) => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
    {
        Issuer = issuer,
        Audience = "orders-api",
        Expires = DateTime.UtcNow.AddMinutes(5),
        Claims = new Dictionary<string, object> { ["sub"] = "u" },
        SigningCredentials = new SigningCredentials(key, SecurityAlgorithms.RsaSha256),
    });

    private static async Task<HttpResponseMessage> SendAsync(HttpClient client, string? bearer)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/x");
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        return await client.SendAsync(request);
    }

    private static Task<WebApplication> StartIssuerAsync(RsaSecurityKey key) => StartIssuerAsync(key, () => true);

    /// <summary>An OpenID issuer on loopback; while <paramref name="up"/> is false it answers 503 to everything.</summary>
    private static async Task<WebApplication> StartIssuerAsync(RsaSecurityKey key, Func<bool> up)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Services.AddRoutingCore();
        var app = builder.Build();
        var jwk = JsonWebKeyConverter.ConvertFromRSASecurityKey(key);
        app.Run(async context =>
        {
            if (!up())
            {
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                return;
            }

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
