using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using YarpGateway.Configuration;
using YarpGateway.Security;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Security;

/// <summary>
/// An edit of <c>Authentication:Schemes:Bearer</c> applies without a restart (a signing key rotated); a bad one is
/// rejected and the settings in force stay; removing the scheme takes a restart and says so.
/// </summary>
public class BearerReloadTests
{
    private static JsonObject Config(TestTokens tokens, TestBackend backend)
    {
        var config = ProxyConfigJson.Config([("any", "/any/{**rest}", "c")], [("c", "RoundRobin", [(backend, null)])]);
        config["ReverseProxy"]!["Routes"]!["any"]!["AuthorizationPolicy"] = "Default";
        config["Authentication"] = tokens.Section();
        return config;
    }

    private static async Task<HttpStatusCode> StatusAsync(HttpClient client, string? token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/any/x");
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        using var response = await client.SendAsync(request);
        return response.StatusCode;
    }

    [Fact]
    public async Task ARotatedSigningKey_AppliesWithoutARestart_AndTokensOfTheRemovedKeyAreRefused_EvenOnesValidatedBefore()
    {
        var before = new TestTokens();
        var after = new TestTokens();
        await using var backend = await TestBackend.StartAsync("a");
        var config = Config(before, backend);
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();
        var old = before.Mint();
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(client, old)); // validated, so remembered by the token cache
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(client, after.Mint()));

        config["Authentication"] = after.Section();
        gateway.WriteConfig(config);

        Assert.True(await Eventually.TrueAsync(() => gateway.Counter("gateway.config.reloads|result=applied") >= 1, TimeSpan.FromSeconds(10)), gateway.DescribeCounters("gateway.config"));
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(client, after.Mint()));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(client, old));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(client, null));

        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("[BearerReloaded]", StringComparison.Ordinal)), TimeSpan.FromSeconds(5)), "no BearerReloaded line");
        var line = Assert.Single(gateway.Logs.Lines, l => l.Contains("[BearerReloaded]", StringComparison.Ordinal));
        Assert.Contains("SigningKeys:0:Value: changed", line, StringComparison.Ordinal);
        Assert.DoesNotContain(Convert.ToBase64String(after.Key), line, StringComparison.Ordinal);
        Assert.DoesNotContain(Convert.ToBase64String(before.Key), line, StringComparison.Ordinal);
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("SectionNeedsRestart", StringComparison.Ordinal));
        Assert.Equal(0, gateway.Counter("gateway.config.reloads|result=rejected"));
    }

    [Fact]
    public async Task AnAudienceAdded_ShowsItsValue_AndTokensForItAreAccepted()
    {
        var tokens = new TestTokens();
        await using var backend = await TestBackend.StartAsync("a");
        var config = Config(tokens, backend);
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(client, tokens.Mint(audience: "billing-api")));

        config["Authentication"]!["Schemes"]!["Bearer"]!["ValidAudiences"]!.AsArray().Add("billing-api");
        gateway.WriteConfig(config);

        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("[BearerReloaded]", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)), "no BearerReloaded line");
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("[BearerReloaded]", StringComparison.Ordinal) && l.Contains("ValidAudiences:1: added ('billing-api')", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(client, tokens.Mint(audience: "billing-api")));
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(client, tokens.Mint()));
    }

    public static TheoryData<string, string, string> BadEdits => new()
    {
        // What ASP.NET Core accepts and then refuses every token for: caught by the gateway's own checks.
        { "ValidAudiences", "null", "no audience is set" },
        // What ASP.NET Core's own binding throws on, at the first request after the edit: caught by building the options.
        { "ValidateAudience", "\"maybe\"", "maybe" },
        // A second key for the same issuer, the first thing one tries to rotate a key: ASP.NET Core threw on every request.
        { "SigningKeys", $$"""[ { "Issuer": "{{TestTokens.Issuer}}", "Value": "{{Convert.ToBase64String(new byte[32])}}" }, { "Issuer": "{{TestTokens.Issuer}}", "Value": "{{Convert.ToBase64String(new byte[32])}}" } ]""", "ASP.NET Core takes one key per issuer" },
    };

    [Theory]
    [MemberData(nameof(BadEdits))]
    public async Task ABadEdit_IsRejectedOnce_AndTokensAreStillValidatedWithTheSettingsInForce(string key, string value, string error)
    {
        var tokens = new TestTokens();
        await using var backend = await TestBackend.StartAsync("a");
        var config = Config(tokens, backend);
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        var bad = config.DeepClone();
        bad["Authentication"]!["Schemes"]!["Bearer"]![key] = JsonNode.Parse(value);
        gateway.WriteConfig(bad);

        Assert.True(await Eventually.TrueAsync(() => gateway.Counter("gateway.config.reloads|result=rejected") == 1, TimeSpan.FromSeconds(10)), gateway.DescribeCounters("gateway.config"));
        Assert.True(await Eventually.TrueAsync(
            () => gateway.Logs.Lines.Any(l => l.Contains("[BearerReloadRejected]", StringComparison.Ordinal) && l.Contains(error, StringComparison.Ordinal)
                && l.Contains(gateway.ConfigPath + ": Authentication:Schemes:Bearer", StringComparison.Ordinal)), // and the file to fix
            TimeSpan.FromSeconds(5)), "no rejection line with the file and: " + error + " | " + string.Join(" | ", gateway.Logs.Lines.Where(l => l.Contains("[BearerReloadRejected]", StringComparison.Ordinal))));
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(client, tokens.Mint()));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(client, tokens.Mint(audience: "billing-api")));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(client, null));

        // Put back (with a route added, to see that the file was read), then saved bad again: said again.
        var putBack = config.DeepClone();
        var badAgain = bad.DeepClone();
        foreach (var edited in new[] { putBack, badAgain })
        {
            edited["ReverseProxy"]!["Routes"]!["other"] = JsonNode.Parse("""{ "ClusterId": "c", "Match": { "Path": "/other" } }""");
        }

        gateway.WriteConfig(putBack);
        Assert.True(await Eventually.TrueAsync(() => gateway.Counter("gateway.config.reloads|result=applied") == 1, TimeSpan.FromSeconds(10)), gateway.DescribeCounters("gateway.config"));
        gateway.WriteConfig(badAgain);
        Assert.True(await Eventually.TrueAsync(() => gateway.Counter("gateway.config.reloads|result=rejected") == 2, TimeSpan.FromSeconds(10)), gateway.DescribeCounters("gateway.config"));

        // Fixed: applied.
        config["Authentication"]!["Schemes"]!["Bearer"]!["ValidAudiences"]!.AsArray().Add("billing-api");
        gateway.WriteConfig(config);
        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("[BearerReloaded]", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)), "no BearerReloaded line");
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(client, tokens.Mint(audience: "billing-api")));
        Assert.Equal(2, gateway.Counter("gateway.config.reloads|result=rejected"));
    }

    [Fact]
    public async Task RemovingTheScheme_TakesARestart_AndSaysSo_WhileTokensAreStillRequired()
    {
        var tokens = new TestTokens();
        await using var backend = await TestBackend.StartAsync("a");
        var config = Config(tokens, backend);
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        var removed = config.DeepClone();
        removed.AsObject().Remove("Authentication");
        gateway.WriteConfig(removed);

        static bool NeedsRestart(string l) => l.Contains("[SectionNeedsRestart] " + BearerOptionsReload.ReadAtStartPart + " changed", StringComparison.Ordinal) && l.Contains("Changed: Schemes: removed.", StringComparison.Ordinal);
        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(NeedsRestart), TimeSpan.FromSeconds(10)), "no SectionNeedsRestart line: " + string.Join("\n", gateway.Logs.Lines));
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("[BearerReload", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(client, tokens.Mint()));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(client, null));
    }

    [Fact]
    public async Task AValueAspNetCoreCannotParse_StopsTheStart_WithTheSectionNamed()
    {
        var tokens = new TestTokens();
        await using var backend = await TestBackend.StartAsync("a");
        var config = Config(tokens, backend);
        config["Authentication"]!["Schemes"]!["Bearer"]!["ValidateAudience"] = "sometimes";

        var ex = await Assert.ThrowsAsync<GatewayConfigurationException>(() => GatewayUnderTest.StartAsync(config));

        Assert.Contains(ex.Errors, e => e.Key == BearerAuthentication.SectionName && e.Message.Contains("sometimes", StringComparison.Ordinal));
    }

    /// <summary>
    /// The scheme's options are dropped (so the next request builds them from the new section) before the reload is logged
    /// and counted: a client that sends a token signed with the new key on seeing either is not refused under the old one.
    /// </summary>
    [Fact]
    public void TheReloadLine_IsWritten_AfterTheSchemesOptionsWereDropped()
    {
        var before = new TestTokens();
        var after = new TestTokens();
        var directory = Directory.CreateTempSubdirectory("yarpgateway-bearer-");
        try
        {
            var path = Path.Combine(directory.FullName, "auth.json");
            File.WriteAllText(path, new JsonObject { ["Authentication"] = before.Section() }.ToJsonString());
            var configuration = new Microsoft.Extensions.Configuration.ConfigurationBuilder().AddJsonFile(path, optional: false, reloadOnChange: false).Build();
            var dropped = 0;
            var logs = new ObservingLoggerProvider("BearerReloaded", () => Volatile.Read(ref dropped));
            using var loggers = LoggerFactory.Create(b => b.AddProvider(logs));
            using var reload = new BearerOptionsReload(
                configuration,
                new Microsoft.Extensions.Options.OptionsFactory<Microsoft.AspNetCore.Authentication.JwtBearer.JwtBearerOptions>([], []),
                Telemetry.TestMetrics.Config(),
                loggers.CreateLogger<BearerOptionsReload>());
            using var subscription = Microsoft.Extensions.Primitives.ChangeToken.OnChange(reload.GetChangeToken, () => Interlocked.Increment(ref dropped));

            File.WriteAllText(path, new JsonObject { ["Authentication"] = after.Section() }.ToJsonString());
            configuration.Reload();

            Assert.Equal([1], logs.Seen);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }
}
