using System.Net;
using System.Text.Json.Nodes;
using YarpGateway.Configuration;
using YarpGateway.Tests.Configuration;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Security;

/// <summary>Every route policy name must exist and every policy setting must be valid: errors listed together at start, rejected on reload.</summary>
public class RoutePolicyConfigTests
{
    [Theory]
    [InlineData("AuthorizationPolicy", "Default", "no authentication is configured")]
    [InlineData("AuthorizationPolicy", "orders-write", "no authentication is configured")]
    [InlineData("CorsPolicy", "Disable", "no CORS policies were configured")]
    [InlineData("RateLimiterPolicy", "per-client", "not a policy under Gateway:RateLimiting:Policies (none are defined)")]
    [InlineData("OutputCachePolicy", "short", "not a policy under Gateway:OutputCache:Policies (none are defined)")]
    public async Task WithNothingConfigured_ARoutePolicy_IsOneClearError_NotA500PerRequest(string field, string value, string message)
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]![field] = value;

        var errors = await GatewayConfigValidatorTests.ValidateAsync(config.ToJsonString());

        var error = Assert.Single(errors); // YARP's own "not found" is not repeated
        Assert.Equal($"ReverseProxy:Routes:all:{field}", error.Key);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task APolicyValueThatDoesNotConvert_IsListedAtStart_NotThePolicyDroppedWithoutAWord()
    {
        // The binder dropped a policy holding a value it could not convert: named by no route, the start said nothing;
        // named by one, the error was "'p' is not a policy ... (none are defined)" beside a file that defines it.
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["Gateway"] = JsonNode.Parse("""
        { "RateLimiting": { "Policies": { "p": { "Kind": "FixedWindow", "PermitLimit": "1e3", "Window": "00:00:01" } } },
          "OutputCache": { "Policies": { "c": { "Duration": "1 minute" } } } }
        """);

        var ex = await Assert.ThrowsAsync<GatewayConfigurationException>(() => GatewayUnderTest.StartAsync(config));

        Assert.Contains(ex.Errors, e => e.Key == "Gateway:OutputCache:Policies:c:Duration" && e.Message.Contains("'1 minute' is not a time span", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.Key == "Gateway:RateLimiting:Policies:p:PermitLimit" && e.Message.Contains("'1e3' is not a whole number", StringComparison.Ordinal));
        Assert.Equal(2, ex.Errors.Count); // and no "must be at least 1; got 0" for the default in the bad value's place
    }

    [Fact]
    public async Task APolicyValueThatDoesNotConvert_IsListedAtStart_AndARouteNamingThatPolicyIsNotToldItDoesNotExist()
    {
        // A bad value inside a policy, or anywhere in its section (SizeLimit), left the route naming the policy with a
        // second error, "'c' is not a policy under Gateway:OutputCache:Policies (none are defined)", beside a file that
        // defines it: the rules read the section as the binder gave it, which was without that policy, or nothing.
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]!["RateLimiterPolicy"] = "p";
        config["ReverseProxy"]!["Routes"]!["all"]!["OutputCachePolicy"] = "c";
        config["ReverseProxy"]!["Routes"]!["all"]!["CorsPolicy"] = "o";
        config["Gateway"] = JsonNode.Parse("""
        { "RateLimiting": { "Policies": { "p": { "Kind": "FixedWindow", "PermitLimit": "1e3", "Window": "00:00:01" } } },
          "OutputCache": { "SizeLimit": "lots", "Policies": { "c": { "Duration": "00:01:00", "Locking": "sometimes" } } },
          "Cors": { "Policies": { "o": { "Origins": [ "https://app.example" ], "Credentials": "yes" } } } }
        """);

        var ex = await Assert.ThrowsAsync<GatewayConfigurationException>(() => GatewayUnderTest.StartAsync(config));

        Assert.Contains(ex.Errors, e => e.Key == "Gateway:OutputCache:SizeLimit" && e.Message.Contains("'lots' is not a whole number", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.Key == "Gateway:OutputCache:Policies:c:Locking" && e.Message.Contains("'sometimes' is not true or false", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.Key == "Gateway:RateLimiting:Policies:p:PermitLimit" && e.Message.Contains("'1e3' is not a whole number", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.Key == "Gateway:Cors:Policies:o:Credentials" && e.Message.Contains("'yes' is not true or false", StringComparison.Ordinal));
        Assert.True(ex.Errors.Count == 4, string.Join("\n", ex.Errors.Select(e => $"{e.Key}: {e.Message}")));
    }

    [Fact]
    public async Task AnonymousAuthorization_NeedsNothing_AndServes()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]!["AuthorizationPolicy"] = "Anonymous";
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        using var response = await client.GetAsync("/x");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task BadPoliciesAndUnknownNames_AreListedTogetherAtStart()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        var route = config["ReverseProxy"]!["Routes"]!["all"]!;
        route["AuthorizationPolicy"] = "nope";
        route["CorsPolicy"] = "nope";
        route["RateLimiterPolicy"] = "nope";
        route["OutputCachePolicy"] = "nope";
        config["Authentication"] = JsonNode.Parse("""
        { "Schemes": { "Bearer": { "ValidIssuer": "https://a/", "SigningKeys": [ { "Issuer": "https://b/", "Value": "c2hvcnQ=" } ] } } }
        """);
        config["Gateway"] = JsonNode.Parse("""
        { "Authorization": { "Policies": { "Default": {}, "p": { "RequireScopes": [ "a b" ] } } },
          "Cors": { "Policies": { "web": { "Origins": [ "https://app.example.com/path" ] } } },
          "RateLimiting": { "Policies": { "r": { "Kind": "TokenBucket", "PermitLimit": 0, "PartitionBy": "Cookie:x", "MaxPartitions": 0 } } },
          "OutputCache": { "SizeLimit": 10, "MaximumBodySize": 20, "Policies": { "o": { "Duration": "-00:00:01" } } },
          "ForwardedHeaders": { "KnownNetworks": [ "10.0.0.1/8" ], "KnownProxies": [ "not-an-ip" ] } }
        """);

        var ex = await Assert.ThrowsAsync<GatewayConfigurationException>(() => GatewayUnderTest.StartAsync(config));
        var text = string.Join("\n", ex.Errors.Select(e => e.ToString()));

        string[] expected =
        [
            "SigningKeys:0:Issuer: 'https://b/' is not one of ValidIssuer/ValidIssuers",
            "SigningKeys:0:Value: is 5 bytes",
            "Bearer:ValidAudiences: no audience is set",
            "Policies:Default: 'Default' is reserved",
            "RequireScopes: 'a b' contains a space",
            "'https://app.example.com/path' is not an origin",
            "PermitLimit must be at least 1",
            "PartitionBy 'Cookie:x' is not",
            "MaxPartitions must be at least 1",
            "MaximumBodySize must be from 1 byte to SizeLimit",
            "Duration must be positive",
            "'10.0.0.1/8' is not a network",
            "'not-an-ip' is not an IP address",
            "Routes:all:AuthorizationPolicy: 'nope' is not a policy under Gateway:Authorization:Policies",
            "Routes:all:CorsPolicy: 'nope' is not a policy under Gateway:Cors:Policies (defined: web)",
            "Routes:all:OutputCachePolicy: 'nope' is not a policy under Gateway:OutputCache:Policies (defined: o)",
            "Routes:all:RateLimiterPolicy: 'nope' is not a policy under Gateway:RateLimiting:Policies",
        ];
        foreach (var fragment in expected)
        {
            Assert.True(text.Contains(fragment, StringComparison.Ordinal), $"missing '{fragment}' in:\n{text}");
        }

        Assert.DoesNotContain("not found for route", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AClaimPartition_OnARouteThatDoesNotAuthenticate_IsAnError()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]!["RateLimiterPolicy"] = "per-user";
        config["Gateway"] = JsonNode.Parse("""{ "RateLimiting": { "Policies": { "per-user": { "PermitLimit": 5, "PartitionBy": "Claim:sub" } } } }""");

        var ex = await Assert.ThrowsAsync<GatewayConfigurationException>(() => GatewayUnderTest.StartAsync(config));

        Assert.Contains(ex.Errors, e => e.Key == "ReverseProxy:Routes:all:RateLimiterPolicy" && e.Message.Contains("partitioned by claim 'sub'", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AReloadNamingAnUnknownPolicy_IsRejected_TheLastGoodKeepsServing_AndAPolicyEditSaysItTakesARestart()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]!["RateLimiterPolicy"] = "limited";
        config["Gateway"] = JsonNode.Parse("""{ "RateLimiting": { "Policies": { "limited": { "PermitLimit": 1000 } } } }""");
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        var bad = config.DeepClone();
        bad["ReverseProxy"]!["Routes"]!["all"]!["RateLimiterPolicy"] = "new-policy";
        bad["Gateway"]!["RateLimiting"]!["Policies"]!["new-policy"] = JsonNode.Parse("""{ "PermitLimit": 1 }""");
        gateway.WriteConfig(bad);

        Assert.True(await Eventually.TrueAsync(() => gateway.Counter("gateway.config.reloads|result=rejected") == 1, TimeSpan.FromSeconds(10)),
            gateway.DescribeCounters("gateway.config"));

        // The rejection is counted, then logged: wait for the line itself (a fresh-clone CI run read the log in between).
        Assert.True(await Eventually.TrueAsync(
            () => gateway.Logs.Lines.Any(l => l.Contains("'new-policy' is not a policy under Gateway:RateLimiting:Policies (defined: limited)", StringComparison.Ordinal)
                && l.Contains("a new one takes a restart", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(5)), "no rejection line naming the policy");
        static bool NeedsRestart(string l) => l.Contains("SectionNeedsRestart", StringComparison.Ordinal) && l.Contains(RateLimiting.RateLimitPolicyKeys.ReadAtStartPart + " changed", StringComparison.Ordinal) && l.Contains("Changed: Policies:new-policy: added.", StringComparison.Ordinal);
        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(NeedsRestart), TimeSpan.FromSeconds(5)), "no SectionNeedsRestart line");
        Assert.Single(gateway.Logs.Lines, NeedsRestart);
        for (var i = 0; i < 3; i++)
        {
            using var response = await client.GetAsync("/x");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }
}
