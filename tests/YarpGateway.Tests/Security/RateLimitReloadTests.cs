using System.Net;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using YarpGateway.Configuration;
using YarpGateway.RateLimiting;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Security;

/// <summary>A reload applies a policy's limits (to clients already limited, too); which policies exist and their partitioning wait for a restart.</summary>
public class RateLimitReloadTests
{
    private static RateLimitPolicySettings Fixed(int permits) => new() { Kind = RateLimitKind.FixedWindow, PermitLimit = permits, Window = TimeSpan.FromHours(1) };

    private static HttpContext From(string address)
    {
        var context = new DefaultHttpContext();
        context.Connection.RemoteIpAddress = IPAddress.Parse(address);
        return context;
    }

    private static int Acquired(PartitionedPolicy policy, HttpContext context, int tries)
    {
        var partition = policy.Partition(context);
        var limiter = partition.Factory(partition.PartitionKey);
        var acquired = 0;
        for (var i = 0; i < tries; i++)
        {
            using var lease = limiter.AttemptAcquire();
            acquired += lease.IsAcquired ? 1 : 0;
        }

        limiter.Dispose();
        return acquired;
    }

    [Fact]
    public void NewLimits_GoToNewPartitions_WithTheKeysAndPartitioningAsBefore()
    {
        var policy = new PartitionedPolicy("p", Fixed(2));
        var client = From("192.0.2.1");
        var before = policy.Partition(client).PartitionKey;
        Assert.Equal(2, Acquired(policy, client, 10));

        Assert.True(policy.Apply(Fixed(5)));

        var after = policy.Partition(client).PartitionKey;
        Assert.NotEqual(before, after);
        Assert.EndsWith(before, after, StringComparison.Ordinal);
        Assert.Equal(5, Acquired(policy, client, 10));
        Assert.NotEqual(policy.Partition(From("192.0.2.2")).PartitionKey, after);
        Assert.Equal(5, policy.Settings.PermitLimit);
    }

    [Fact]
    public void TheSameLimits_ChangeNothing_NotEvenTheKeys()
    {
        var policy = new PartitionedPolicy("p", Fixed(2));
        var key = policy.Partition(From("192.0.2.1")).PartitionKey;

        Assert.False(policy.Apply(Fixed(2)));
        Assert.False(policy.Apply(new RateLimitPolicySettings { Kind = RateLimitKind.FixedWindow, PermitLimit = 2, Window = TimeSpan.FromHours(1), PartitionBy = "Route" }));

        Assert.Equal(key, policy.Partition(From("192.0.2.1")).PartitionKey);
    }

    [Theory]
    [InlineData("Kind", RateLimitKind.TokenBucket)]
    [InlineData("QueueLimit", 3)]
    [InlineData("MaxPartitions", 10)]
    public void AnyLimit_IsAChange(string field, object value)
    {
        var changed = Fixed(2);
        typeof(RateLimitPolicySettings).GetProperty(field)!.SetValue(changed, value);
        Assert.False(Fixed(2).SameLimitsAs(changed));
    }

    [Fact]
    public void WhatAReloadApplies_IsTheStartedPoliciesLimits_NotTheirPartitioningNorNewPolicies()
    {
        var keys = new Dictionary<string, string>
        {
            ["Policies:a:PermitLimit"] = "5",
            ["Policies:a:PartitionBy"] = "Route",
            ["Policies:A-long:PermitLimit"] = "9",
            ["Policies:b:PermitLimit"] = "7",
        };

        var live = PolicyKeys.Live(["a"], keys, applied: null, readAtStart: "PartitionBy");

        Assert.Equal(["Policies:a:PermitLimit=5"], live.Select(kv => $"{kv.Key}={kv.Value}"));
    }

    [Fact]
    public void AStartedPolicyGoneFromTheFile_KeepsWhatWasApplied()
    {
        var applied = new Dictionary<string, string> { ["Policies:a:PermitLimit"] = "5", ["Policies:b:PermitLimit"] = "6" };

        var live = PolicyKeys.Live(["a", "b"], new Dictionary<string, string> { ["Policies:b:PermitLimit"] = "8" }, applied, readAtStart: "PartitionBy");

        Assert.Equal(["Policies:a:PermitLimit=5", "Policies:b:PermitLimit=8"], live.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}"));
    }

    [Fact]
    public void StartupOnly_APolicyAddedOrRepartitioned_IsLoggedOnce_ALimitEditIsNot()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Gateway:RateLimiting:Policies:a:PermitLimit"] = "5",
        }).Build();
        var logs = new CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(builder => builder.AddProvider(logs));
        using var sections = new StartupOnlySections(configuration, () => [], factory.CreateLogger<StartupOnlySections>());

        configuration["Gateway:RateLimiting:Policies:a:PermitLimit"] = "50";
        configuration["Gateway:RateLimiting:Policies:a:Kind"] = "FixedWindow";
        configuration.Reload();
        configuration["Gateway:RateLimiting:Policies:a:PartitionBy"] = "ClientIp"; // the default: no change
        configuration.Reload();
        Assert.Empty(logs.Lines);

        configuration["Gateway:RateLimiting:Policies:b:PermitLimit"] = "1";
        configuration.Reload();
        configuration["Gateway:RateLimiting:Policies:a:PartitionBy"] = "Route";
        configuration.Reload();

        Assert.Collection(logs.Lines,
            line => Assert.Contains($"[SectionNeedsRestart] {RateLimitPolicyKeys.ReadAtStartPart} changed, and is read at start-up only", line, StringComparison.Ordinal),
            line => Assert.EndsWith("Changed: Policies:a:PartitionBy: 'ClientIp' -> 'Route'.", line, StringComparison.Ordinal));
        Assert.EndsWith("Changed: Policies:b: added.", logs.Lines.First(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AReloadedLimit_ReachesAClientAlreadyLimited_AndAPartitionByEditWaitsForARestart()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]!["RateLimiterPolicy"] = "limited";
        config["Gateway"] = System.Text.Json.Nodes.JsonNode.Parse("""{ "RateLimiting": { "Policies": { "limited": { "Kind": "FixedWindow", "PermitLimit": 2, "Window": "01:00:00" } } } }""");
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();
        Assert.Equal(new[] { 200, 200, 429 }, await StatusesAsync(client, 3));

        config["Gateway"]!["RateLimiting"]!["Policies"]!["limited"]!["PermitLimit"] = 4;
        gateway.WriteConfig(config);
        static bool Reloaded(string l) => l.Contains("[OptionsReloaded] Gateway:RateLimiting reloaded. Changed: Policies:limited:PermitLimit: '2' -> '4'.", StringComparison.Ordinal);
        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(Reloaded), TimeSpan.FromSeconds(10)), string.Join("\n", gateway.Logs.Lines));

        Assert.Equal(new[] { 200, 200, 200, 200, 429 }, await StatusesAsync(client, 5));

        // PartitionBy is read at start-up: by header, this request would be a partition of its own and pass.
        config["Gateway"]!["RateLimiting"]!["Policies"]!["limited"]!["PartitionBy"] = "Header:X-Key";
        gateway.WriteConfig(config);
        static bool NeedsRestart(string l) => l.Contains("[SectionNeedsRestart]", StringComparison.Ordinal) && l.Contains("Changed: Policies:limited:PartitionBy: ", StringComparison.Ordinal) && l.Contains(" -> 'Header:X-Key'.", StringComparison.Ordinal);
        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(NeedsRestart), TimeSpan.FromSeconds(10)), string.Join("\n", gateway.Logs.Lines));
        using var request = new HttpRequestMessage(HttpMethod.Get, "/x") { Headers = { { "X-Key", "fresh" } } };
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.Single(gateway.Logs.Lines, l => l.Contains("[OptionsReloaded] Gateway:RateLimiting", StringComparison.Ordinal));
    }

    private static async Task<int[]> StatusesAsync(HttpClient client, int count)
    {
        var statuses = new int[count];
        for (var i = 0; i < count; i++)
        {
            using var response = await client.GetAsync("/x");
            statuses[i] = (int)response.StatusCode;
        }

        return statuses;
    }
}
