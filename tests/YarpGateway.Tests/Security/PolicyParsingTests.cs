using System.Net;
using System.Security.Claims;
using YarpGateway.Cors;
using YarpGateway.RateLimiting;
using YarpGateway.Security;

namespace YarpGateway.Tests.Security;

/// <summary>The parsers and checks under the route policies, as units.</summary>
public class PolicyParsingTests
{
    [Theory]
    [InlineData("ClientIp", "ClientIp", "")]
    [InlineData("clientip", "ClientIp", "")]
    [InlineData("Route", "Route", "")]
    [InlineData("Header:X-Api-Key", "Header", "X-Api-Key")]
    [InlineData("Claim:sub", "Claim", "sub")]
    public void PartitionBy_Parses(string text, string source, string name)
    {
        Assert.True(PartitionKind.TryParse(text, out var kind));
        Assert.Equal(new PartitionKind(Enum.Parse<PartitionSource>(source), name), kind);
    }

    [Theory]
    [InlineData("")]
    [InlineData("Header:")]
    [InlineData("Header:X Y")]
    [InlineData("Header:X-Key,")]
    [InlineData("Header:X(Y)")]
    [InlineData("Header:X/Y")]
    [InlineData("Header:\"X\"")]
    [InlineData("Cookie:x")]
    [InlineData("Claim")]
    public void PartitionBy_RefusesTheRest(string text) => Assert.False(PartitionKind.TryParse(text, out _));

    [Theory]
    [InlineData("Header:X-Key,", "'Header:X-Key,' does not name a header: a header name is letters, digits and")]
    [InlineData("Header:", "'Header:' is not ClientIp, Route, Header:<name> or Claim:<type>")]
    [InlineData("Cookie:x", "'Cookie:x' is not ClientIp, Route")]
    public void PartitionBy_ThatIsRefused_SaysWhy(string partitionBy, string expected)
    {
        var options = new GatewayRateLimitingOptions();
        options.Policies["p"] = new RateLimitPolicySettings { PermitLimit = 1, PartitionBy = partitionBy };

        var result = new GatewayRateLimitingOptionsValidator().Validate(null, options);

        Assert.Contains("Gateway:RateLimiting:Policies:p:PartitionBy " + expected, Assert.Single(result.Failures!), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Methods", "GET, POST")]
    [InlineData("Methods", "G(ET")]
    [InlineData("Headers", "X-Api-Key,")]
    [InlineData("Headers", "X/Y")]
    [InlineData("Headers", "\"X\"")]
    [InlineData("ExposedHeaders", "X@Y")]
    [InlineData("ExposedHeaders", "")]
    public void ACorsMethodOrHeader_ThatIsNotAToken_IsRefused(string list, string value)
    {
        var settings = new CorsPolicySettings { Origins = ["https://app.example.com"] };
        (list switch { "Methods" => settings.Methods, "Headers" => settings.Headers, _ => settings.ExposedHeaders }).Add(value);
        var options = new GatewayCorsOptions();
        options.Policies["web"] = settings;

        var result = new GatewayCorsOptionsValidator().Validate(null, options);

        Assert.Equal($"Gateway:Cors:Policies:web:{list}: '{value}' is not a method or header name: letters, digits and !#$%&'*+-.^_`|~ only (list each as its own entry).", Assert.Single(result.Failures!));
    }

    [Fact]
    public void CorsTokensAndTheWildcard_AreAccepted()
    {
        var options = new GatewayCorsOptions();
        options.Policies["web"] = new CorsPolicySettings { Origins = ["https://app.example.com"], Methods = ["GET", "PATCH", "*"], Headers = ["X-Api-Key", "*"], ExposedHeaders = ["X-Request-Id"] };

        Assert.True(new GatewayCorsOptionsValidator().Validate(null, options).Succeeded);
    }

    [Theory]
    [InlineData("203.0.113.9", "203.0.113.9")]
    [InlineData("::ffff:203.0.113.9", "203.0.113.9")]
    [InlineData("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64")]
    [InlineData("2001:db8:1:2::1", "2001:db8:1:2::/64")]
    public void AClient_IsItsIPv4Address_OrItsIPv6Slash64(string address, string key)
        => Assert.Equal(key, YarpGateway.Endpoints.ClientEndPoint.Key(IPAddress.Parse(address)));

    [Fact]
    public void Scopes_AreFoundSpaceSeparatedOrOnePerClaim_AndAllAreRequired()
    {
        var spaced = new ClaimsPrincipal(new ClaimsIdentity([new Claim("scope", "orders.read orders.write")], "Bearer"));
        var perClaim = new ClaimsPrincipal(new ClaimsIdentity([new Claim("scp", "orders.read"), new Claim("scp", "orders.write")], "Bearer"));
        var prefix = new ClaimsPrincipal(new ClaimsIdentity([new Claim("scope", "orders.writer")], "Bearer"));

        Assert.True(TokenClaims.HasScopes(spaced, ["orders.write", "orders.read"]));
        Assert.True(TokenClaims.HasScopes(perClaim, ["orders.write", "orders.read"]));
        Assert.False(TokenClaims.HasScopes(spaced, ["orders.write", "orders.delete"]));
        Assert.False(TokenClaims.HasScopes(prefix, ["orders.write"]));
    }

    [Fact]
    public void Roles_AnyOneOfThemIsEnough()
    {
        var user = new ClaimsPrincipal(new ClaimsIdentity([new Claim("roles", "admin"), new Claim("role", "ops")], "Bearer"));

        Assert.True(TokenClaims.HasAnyRole(user, ["nobody", "ops"]));
        Assert.False(TokenClaims.HasAnyRole(user, ["Admin"]));
    }

    [Theory]
    [InlineData("""{ "Authority": "http://login.example.com/", "ValidAudiences": [ "a" ] }""", "is not https")]
    [InlineData("""{ "Authority": "login.example.com", "ValidAudiences": [ "a" ] }""", "is not an absolute http(s) address")]
    [InlineData("""{ "ValidAudiences": [ "a" ] }""", "neither SigningKeys")]
    [InlineData("""{ "Authority": "https://login.example.com/" }""", "no audience is set")]
    [InlineData("""{ "ValidIssuer": "i", "ValidAudience": "a", "SigningKeys": [ { "Issuer": "i", "Value": "not base64!" } ] }""", "is not a base64 key")]
    public void BearerSection_MistakesThatWouldRefuseEveryToken_AreErrors(string bearer, string message)
    {
        var configuration = new ConfigurationBuilder()
            .AddJsonStream(new MemoryStream(System.Text.Encoding.UTF8.GetBytes($$"""{ "Authentication": { "Schemes": { "Bearer": {{bearer}} } } }""")))
            .Build();

        var error = Assert.Single(BearerAuthentication.Validate(configuration));

        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BearerSection_AValidOne_HasNoError()
    {
        var configuration = new ConfigurationBuilder().AddJsonStream(new MemoryStream(System.Text.Encoding.UTF8.GetBytes("""
            { "Authentication": { "Schemes": { "Bearer": { "Authority": "https://login.example.com/", "ValidAudiences": [ "a" ],
              "ValidIssuer": "i", "SigningKeys": [ { "Issuer": "i", "Value": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" } ] } } } }
            """))).Build();

        Assert.Empty(BearerAuthentication.Validate(configuration));
    }

    [Fact]
    public void Partitions_AreCountedPerKey_EvenWhenAKeysNewLimiterComesBeforeItsOldOneGoes()
    {
        var policy = new PartitionedPolicy("p", new RateLimitPolicySettings { PermitLimit = 1, PartitionBy = "Header:X-Key", MaxPartitions = 2 });
        var context = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        context.Request.Headers["X-Key"] = "a";
        var partition = policy.Partition(context);

        var old = partition.Factory(partition.PartitionKey);
        var renewed = partition.Factory(partition.PartitionKey); // the middleware replaced an idle limiter
        Assert.Equal(1, policy.Partitions);
        old.Dispose();
        Assert.Equal(1, policy.Partitions);

        context.Request.Headers["X-Key"] = "b";
        var b = policy.Partition(context);
        using var bLimiter = b.Factory(b.PartitionKey);
        Assert.Equal(2, policy.Partitions);

        context.Request.Headers["X-Key"] = "a";
        Assert.Equal("a", policy.Partition(context).PartitionKey); // still known: not sent to the overflow partition
        context.Request.Headers["X-Key"] = "c";
        Assert.Equal(PartitionedPolicy.OverflowKey, policy.Partition(context).PartitionKey);

        renewed.Dispose();
        Assert.Equal(1, policy.Partitions);
    }
}
