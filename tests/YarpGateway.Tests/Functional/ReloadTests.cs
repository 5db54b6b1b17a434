using System.Net;
using System.Text.Json.Nodes;

namespace YarpGateway.Tests.Functional;

public class ReloadTests
{
    private const string Rejected = "gateway.config.reloads|result=rejected";
    private const string Applied = "gateway.config.reloads|result=applied";
    private const string RestartErrors = "gateway.config.restart_errors";
    private static readonly TimeSpan ReloadBound = TimeSpan.FromSeconds(2);

    [Fact]
    public async Task WeightsAndRoutesChangeUnderLoad_NoRequestFails_NewSplitShows()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (a, "1"), (b, "1")));
        using var client = gateway.CreateProxyClient();

        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var progress = new Load.Progress();
        var background = Load.RunAsync(gateway, requests: int.MaxValue, workers: 4, cancellationToken: stop.Token, progress: progress);
        Assert.True(await Eventually.TrueAsync(() => progress.Completed >= 300, TimeSpan.FromSeconds(10)), "load did not start");

        // Weights 1/1 -> 3/1, plus a second, more specific route to b alone.
        gateway.WriteConfig(ProxyConfigJson.Config(
            [("all", "/{**catch-all}", "c1"), ("only-b", "/b/{**rest}", "c2")],
            [("c1", "WeightedRoundRobin", [(a, "3"), (b, "1")]), ("c2", "WeightedRoundRobin", [(b, null)])]));

        var applied = await Eventually.TrueAsync(async () =>
        {
            using var response = await client.GetAsync("/b/x");
            return gateway.Counter(Applied) == 1 && await response.Content.ReadAsStringAsync() == "b";
        }, ReloadBound);
        var atApply = progress.Completed;
        Assert.True(await Eventually.TrueAsync(() => progress.Completed >= atApply + 300, TimeSpan.FromSeconds(10)), "load stalled after the reload");

        await stop.CancelAsync();
        var during = await background;

        // Measured alone: a concurrent load would take every other pick of the shared cursor.
        var after = await Load.RunAsync(gateway, requests: 2000, workers: 4);

        Assert.True(applied, "the new route did not serve within 2 s; logs: " + string.Join(" | ", gateway.Logs.Lines));
        Assert.True(during.Failures == 0, $"{during.Failures} of {during.Total} requests failed during the reload: {string.Join("; ", during.FailureSamples)}");
        Assert.True(during.Total >= 600, $"only {during.Total} requests ran around the reload");
        Assert.Equal(0, after.Failures);
        Assert.InRange(after.Share("a"), 0.73, 0.77);
        Assert.Equal(0, gateway.Counter(Rejected));
        Assert.Single(gateway.Logs.Lines, l => l.Contains(
            "[ConfigReloaded] Proxy configuration reloaded: revision 2, 2 routes, 2 clusters. Changed: Clusters:c1:Destinations:a:Metadata:Weight: '1' -> '3'; Clusters:c2: added; Routes:only-b: added.",
            StringComparison.Ordinal));
    }

    public static TheoryData<string, string, string> BadReloads => new()
    {
        { "broken JSON", "{ \"ReverseProxy\": { \"Routes\": ", "not valid JSON" },
        { "unknown policy", Policy("Fastest"), "Fastest" },
        { "bad weight", Weight("-5"), "'-5' is not a valid weight" },
        { "zero routes", """{ "ReverseProxy": { "Routes": {}, "Clusters": {} } }""", "no routes where 1 were serving" },
        { "bad route limit", RouteLimit("\"MaxConcurrency\": \"0\""), "'0' is not a whole number of at least 1" },
        { "queue without limit", RouteLimit("\"MaxQueue\": \"5\""), "need MaxConcurrency" },
        { "ambiguous routes", """
            { "ReverseProxy": { "Routes": { "a": { "ClusterId": "c1", "Match": { "Path": "/{**x}" } }, "b": { "ClusterId": "c1", "Match": { "Path": "/{**x}" } } },
              "Clusters": { "c1": { "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
            """, "same Match and Order as route 'a'" },
        { "destination with a query", """
            { "ReverseProxy": { "Routes": { "a": { "ClusterId": "c1", "Match": { "Path": "/{**x}" } } },
              "Clusters": { "c1": { "Destinations": { "d": { "Address": "http://127.0.0.1:1/base/?x=1" } } } } } }
            """, "has a query or fragment" },
    };

    [Theory]
    [MemberData(nameof(BadReloads))]
    public async Task BadReload_LastGoodConfigKeepsServing_ErrorLoggedOnceAndCounted(string what, string text, string expectedInLog)
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (a, "1")));
        using var client = gateway.CreateProxyClient();

        gateway.WriteConfig(text.Replace("ADDRESS", a.Address.ToString(), StringComparison.Ordinal));

        Assert.True(await Eventually.TrueAsync(() => gateway.Counter(Rejected) >= 1, ReloadBound), $"{what}: no rejection counted within 2 s");

        // The last good configuration keeps serving.
        var result = await Load.RunAsync(gateway, requests: 50, workers: 2);
        Assert.Equal(0, result.Failures);
        Assert.Equal(50, result.ByBackend["a"]);

        // Saving the same broken file again is not a new problem: logged and counted once.
        gateway.WriteConfig(text.Replace("ADDRESS", a.Address.ToString(), StringComparison.Ordinal) + " ");
        gateway.WriteConfig(ProxyConfigJson.CatchAll("WeightedRoundRobin", (a, "2")));
        Assert.True(await Eventually.TrueAsync(() => gateway.Counter(Applied) == 1, ReloadBound), $"{what}: the fixed config was not applied");
        var rejections = gateway.Logs.Lines.Where(l => l.Contains("ConfigReloadRejected", StringComparison.Ordinal)).ToList();
        Assert.Contains(expectedInLog, Assert.Single(rejections), StringComparison.Ordinal);
        Assert.Contains(gateway.ConfigPath, rejections[0], StringComparison.Ordinal);
        Assert.Equal(1, gateway.Counter(Rejected));
    }

    private static string Policy(string policy) => Cluster($"\"LoadBalancingPolicy\": \"{policy}\",", "\"Address\": \"ADDRESS\"");

    private static string Weight(string weight) => Cluster(string.Empty, $"\"Address\": \"ADDRESS\", \"Metadata\": {{ \"Weight\": \"{weight}\" }}");


    private static string RouteLimit(string metadata) => $$"""
        { "ReverseProxy": {
            "Routes": { "all": { "ClusterId": "c1", "Match": { "Path": "/{**catch-all}" }, "Metadata": { {{metadata}} } } },
            "Clusters": { "c1": { "Destinations": { "a": { "Address": "ADDRESS" } } } } } }
        """;

    [Fact]
    public async Task AnEditOfARoutesMaxRequestBodySizeAlone_IsAppliedAndLogged()
    {
        // YARP's RouteConfig.Equals leaves MaxRequestBodySize out: an edit of it alone was no change to the gateway's
        // provider nor to YARP, nothing was logged, and the route kept its old limit until a restart.
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]!["MaxRequestBodySize"] = 10;
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();
        using (var refused = await client.PostAsync("/up", new ByteArrayContent(new byte[20])))
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, refused.StatusCode);
        }

        config["ReverseProxy"]!["Routes"]!["all"]!["MaxRequestBodySize"] = 100_000;
        gateway.WriteConfig(config);
        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("revision 2", StringComparison.Ordinal) && l.Contains("Routes:all:MaxRequestBodySize: '10' -> '100000'", StringComparison.Ordinal)), TimeSpan.FromSeconds(5)),
            "the edit was not taken: " + string.Join(" | ", gateway.Logs.Lines.Where(l => l.Contains("GatewayConfigProvider", StringComparison.Ordinal))));
        Assert.True(await Eventually.TrueAsync(async () =>
        {
            using var response = await client.PostAsync("/up", new ByteArrayContent(new byte[20]));
            return response.StatusCode == HttpStatusCode.OK;
        }, TimeSpan.FromSeconds(5)), "a 20-byte upload is still refused under the raised limit");
    }

    [Fact]
    public async Task BadGatewayOptionsOnReload_PreviousSettingsStay_ErrorLoggedOnceAndCounted()
    {
        await using var a = await TestBackend.StartAsync("a");
        var good = ProxyConfigJson.CatchAll("WeightedRoundRobin", (a, "1"));
        good["Gateway"] = JsonNode.Parse("""{ "Admission": { "Global": { "MaxConcurrency": 1, "MaxQueue": 0 } } }""");
        await using var gateway = await GatewayUnderTest.StartAsync(good);
        using var client = gateway.CreateProxyClient();

        var bad = good.DeepClone();
        bad["Gateway"]!["Admission"]!["Global"]!["MaxConcurrency"] = -5;
        gateway.WriteConfig(bad);
        Assert.True(await Eventually.TrueAsync(() => gateway.Counter(Rejected) == 1, ReloadBound), "the bad options were not rejected");

        await AssertALimitOfOneAsync(client, a); // requests still flow, under the previous limit of 1

        var rejection = Assert.Single(gateway.Logs.Lines, l => l.Contains("OptionsReloadRejected", StringComparison.Ordinal));
        Assert.Contains(gateway.ConfigPath + ": Gateway:Admission:Global:MaxConcurrency must not be negative", rejection, StringComparison.Ordinal); // and the file to fix

        // A good edit after the bad one says what changed from the settings in force (-5 never was;
        // RetryAfter is 1 s in appsettings.json).
        var better = good.DeepClone();
        better["Gateway"]!["Admission"]!["Global"]!["MaxConcurrency"] = 2;
        better["Gateway"]!["Admission"]!["RetryAfter"] = "00:00:03";
        gateway.WriteConfig(better);
        Assert.True(await Eventually.TrueAsync(() => gateway.Counter(Applied) == 1, ReloadBound), "the good options were not applied");

        // The counter is added to just before the line is logged: wait for the line itself.
        static bool Reloaded(string line) => line.Contains("[OptionsReloaded]", StringComparison.Ordinal);
        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(Reloaded), ReloadBound), "no OptionsReloaded line");
        var reloaded = gateway.Logs.Lines.Where(Reloaded).ToList();
        Assert.True(reloaded.Count == 1 && reloaded[0].EndsWith(
            "[OptionsReloaded] Gateway:Admission reloaded. Changed: Global:MaxConcurrency: '1' -> '2'; RetryAfter: '00:00:01' -> '00:00:03'.", StringComparison.Ordinal),
            string.Join(" | ", reloaded));
    }

    [Fact]
    public async Task AnEditOfAnotherSection_OrASighupThatChangesNothing_DoesNotReadOrValidateTheRoutesAgain()
    {
        // Each reload read and validated every route, whatever had changed: with 3,000 routes about a second of CPU each,
        // and a SIGHUP that changed nothing (three reloads: one per file it reads, and its own) took 3.5 s.
        await using var a = await TestBackend.StartAsync("a");
        var rule = new CountingRule();
        var config = ProxyConfigJson.CatchAll("WeightedRoundRobin", (a, "1"));
        config["Gateway"] = JsonNode.Parse("""{ "Admission": { "Global": { "MaxConcurrency": 10 } } }""");
        await using var gateway = await GatewayUnderTest.StartAsync(config, services => services.AddSingleton<YarpGateway.Configuration.IProxyConfigRule>(rule));
        var atStart = rule.Routes;
        Assert.True(atStart > 0);

        config["Gateway"]!["Admission"]!["Global"]!["MaxConcurrency"] = 20;
        gateway.WriteConfig(config);
        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("[OptionsReloaded]", StringComparison.Ordinal)), ReloadBound), "the edit was not applied");
        await gateway.Services.GetServices<IHostedService>().OfType<YarpGateway.Configuration.ConfigReloadSignal>().Single().ReloadAsync(CancellationToken.None);

        Assert.Equal(atStart, rule.Routes);
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("[ConfigReloadSignaled]", StringComparison.Ordinal) && l.Contains("the routes and clusters are unchanged", StringComparison.Ordinal));

        config["ReverseProxy"]!["Routes"]!["all"]!["Order"] = 5; // and a change of a route is validated
        gateway.WriteConfig(config);
        Assert.True(await Eventually.TrueAsync(() => rule.Routes > atStart && gateway.Logs.Lines.Any(l => l.Contains("[ConfigReloaded]", StringComparison.Ordinal)), ReloadBound),
            "the route's edit was not validated and applied");
    }

    [Fact]
    public async Task FilesARestartWouldRefuse_AreCountedAndListed_UntilFixed_WhateverTheRunningGatewayKept()
    {
        // Each rejected edit was logged once when saved, and the running gateway kept its last good settings: nothing it
        // served then said that a new pod (a rolling update, an evicted pod) would exit at once with the files as they were.
        await using var a = await TestBackend.StartAsync("a");
        var good = ProxyConfigJson.CatchAll("WeightedRoundRobin", (a, "1"));
        await using var gateway = await GatewayUnderTest.StartAsync(good);
        using var management = gateway.CreateManagementClient();
        var signal = gateway.Services.GetServices<IHostedService>().OfType<YarpGateway.Configuration.ConfigReloadSignal>().Single();
        async Task<string[]> RestartErrorsAsync()
        {
            using var status = System.Text.Json.JsonDocument.Parse(await management.GetStringAsync("/status.json"));
            return [.. status.RootElement.GetProperty("restartErrors").EnumerateArray().Select(e => e.GetString()!)];
        }

        Assert.Equal(0, gateway.Counter(RestartErrors));
        Assert.Empty(await RestartErrorsAsync());

        // A live section's edit (rejected, its last good settings kept), a start-up-only one (kept until a restart),
        // and a destination without its scheme (the proxy configuration's rejection).
        var bad = good.DeepClone();
        bad["Gateway"] = JsonNode.Parse("""{ "Admission": { "Global": { "MaxConcurrency": -5 } }, "Http2": { "MaxStreamResets": -1 } }""");
        bad["ReverseProxy"]!["Clusters"]!["c1"]!["Destinations"]!["a"]!["Address"] = "127.0.0.1:1";
        gateway.WriteConfig(bad);
        Assert.True(await Eventually.TrueAsync(() => gateway.Counter(RestartErrors) == 3, ReloadBound), "restart errors: " + gateway.DescribeCounters("gateway.config"));
        var listed = await RestartErrorsAsync();
        Assert.Collection(listed,
            e => Assert.EndsWith("Gateway:Admission:Global:MaxConcurrency must not be negative (0 turns the limit off); got -5.", e, StringComparison.Ordinal),
            e => Assert.EndsWith("Gateway:Http2:MaxStreamResets must not be negative; got -1.", e, StringComparison.Ordinal),
            e => Assert.Contains("ReverseProxy:Clusters:c1:Destinations:a:Address: '127.0.0.1:1' is not an absolute", e, StringComparison.Ordinal));
        Assert.All(listed, e => Assert.StartsWith(gateway.ConfigPath + ": ", e, StringComparison.Ordinal));
        await signal.ReloadAsync(CancellationToken.None);
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("[ConfigReloadSignaled]", StringComparison.Ordinal)
            && l.Contains("A restart would fail with the files as they are (3 error(s)): those above, and ", StringComparison.Ordinal)
            && l.EndsWith("Gateway:Http2:MaxStreamResets must not be negative; got -1.", StringComparison.Ordinal));

        // Requests still flow on what the gateway kept.
        using (var client = gateway.CreateProxyClient())
        using (var response = await client.GetAsync("/x"))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // No routes at all: a reload refuses it while routes serve, start-up would take it.
        var none = good.DeepClone();
        none["ReverseProxy"]!["Routes"] = new JsonObject();
        gateway.WriteConfig(none);
        Assert.True(await Eventually.TrueAsync(() => gateway.Counter(RestartErrors) == 0, ReloadBound), "restart errors: " + string.Join(" | ", await RestartErrorsAsync()));
        Assert.NotNull(gateway.Services.GetRequiredService<YarpGateway.Configuration.GatewayConfigProvider>().RejectedReason);

        gateway.WriteConfig(good);
        await signal.ReloadAsync(CancellationToken.None);
        Assert.Equal(0, gateway.Counter(RestartErrors));
        Assert.Empty(await RestartErrorsAsync());
        Assert.EndsWith("A restart would start with the files as they are.", gateway.Logs.Lines.Last(l => l.Contains("[ConfigReloadSignaled]", StringComparison.Ordinal)), StringComparison.Ordinal);
    }

    private sealed class CountingRule : YarpGateway.Configuration.IProxyConfigRule
    {
        private int _routes;

        public int Routes => Volatile.Read(ref _routes);

        public void ValidateRoute(Yarp.ReverseProxy.Configuration.RouteConfig route, string key, ICollection<YarpGateway.Configuration.ConfigError> errors) => Interlocked.Increment(ref _routes);

        public void ValidateCluster(Yarp.ReverseProxy.Configuration.ClusterConfig cluster, string key, ICollection<YarpGateway.Configuration.ConfigError> errors)
        {
        }
    }

    /// <summary>
    /// An edit of what is read at start-up only, that start-up would refuse: said when it is saved, with start-up's own
    /// errors. Before, the warning said "a rolling restart applies the change", and the restart's new pods exited at once.
    /// </summary>
    [Fact]
    public async Task AStartupOnlyEditThatARestartWouldRefuse_IsAnErrorWhenSaved_WithStartUpsErrors()
    {
        await using var a = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (a, null));
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        var edited = config.DeepClone();
        edited["Gateway"] = JsonNode.Parse("""{ "Http2": { "MaxStreamResets": -1 }, "Transport": { "Backlog": 10 } }""");
        edited["Kestrel"] = JsonNode.Parse("""{ "Limits": { "MaxRequestHeaderCount": 0 } }""");
        gateway.WriteConfig(edited);

        string[] expected =
        [
            "[SectionChangeWouldFailRestart] Gateway:Http2 changed", "Gateway:Http2:MaxStreamResets must not be negative; got -1.",
            "[SectionChangeWouldFailRestart] Kestrel changed", "Kestrel:Limits:MaxRequestHeaderCount",
        ];
        Assert.True(
            await Eventually.TrueAsync(() => gateway.Logs.Lines.Count(l => l.Contains("[SectionChangeWouldFailRestart]", StringComparison.Ordinal)) >= 2, ReloadBound),
            string.Join("\n", gateway.Logs.Lines));
        var lines = string.Join("\n", gateway.Logs.Lines.Where(l => l.Contains("[SectionChangeWouldFailRestart]", StringComparison.Ordinal)));
        foreach (var fragment in expected)
        {
            Assert.Contains(fragment, lines, StringComparison.Ordinal);
        }

        Assert.Contains(gateway.ConfigPath + ": Gateway:Http2:MaxStreamResets", lines, StringComparison.Ordinal); // the file that set it
        Assert.Single(gateway.Logs.Lines, l => l.Contains("[SectionNeedsRestart] Gateway:Transport changed", StringComparison.Ordinal)); // a good edit: as before
        Assert.Equal("a", await client.GetStringAsync("/x")); // still serving what it started with

        // What it said is what a restart says.
        var restart = await Assert.ThrowsAsync<YarpGateway.Configuration.GatewayConfigurationException>(() => GatewayUnderTest.StartAsync(edited));
        Assert.Contains(restart.Errors, e => e.Key == "Gateway:Http2:MaxStreamResets");
        Assert.Contains(restart.Errors, e => e.Key.StartsWith("Kestrel:Limits:MaxRequestHeaderCount", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("broken JSON", "not valid JSON")]
    [InlineData("deleted", "is missing")]
    [InlineData("a key twice", "not usable as configuration: A duplicate key 'AllowedHosts'")] // valid JSON, so a JSON check alone passed it
    public async Task AConfigFileThatBreaksOrGoes_KeepsEveryGatewaySettingItSet_NotOnlyTheRoutes(string what, string expectedInLog)
    {
        await using var a = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("WeightedRoundRobin", (a, "1"));
        config["Gateway"] = JsonNode.Parse("""{ "Admission": { "Global": { "MaxConcurrency": 1, "MaxQueue": 0 } } }""");
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        if (what == "deleted")
        {
            File.Delete(gateway.ConfigPath);
        }
        else
        {
            gateway.WriteConfig(what == "broken JSON" ? "{ \"ReverseProxy\": { \"Routes\": " : "{ \"AllowedHosts\": \"*\", \"AllowedHosts\": \"*\" }");
        }

        Assert.True(await Eventually.TrueAsync(() => gateway.Counter(Rejected) >= 1, ReloadBound), $"{what}: no rejection counted");

        await AssertALimitOfOneAsync(client, a); // the file's 1 still holds (appsettings.json's 4096 would let a second request through)

        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("[OptionsReloaded]", StringComparison.Ordinal) || l.Contains("[SectionNeedsRestart]", StringComparison.Ordinal));
        var rejection = Assert.Single(gateway.Logs.Lines, l => l.Contains("[ConfigReloadRejected]", StringComparison.Ordinal));
        Assert.Contains(gateway.ConfigPath, rejection, StringComparison.Ordinal);
        Assert.Contains(expectedInLog, rejection, StringComparison.Ordinal);
    }

    /// <summary>
    /// Beyond the routes and <c>Gateway:*</c>: the file's other keys keep their values too. Before, the
    /// runtime's JSON provider emptied a broken or deleted file's data, so <c>AllowedHosts</c> set there
    /// fell back to "any host" (a foreign Host header got 200) and its log levels to appsettings.json's.
    /// </summary>
    [Theory]
    [InlineData("broken JSON")]
    [InlineData("deleted")]
    public async Task AConfigFileThatBreaksOrGoes_KeepsItsOtherKeysToo_HostFilteringAndLogLevels(string what)
    {
        await using var a = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (a, null));
        config["AllowedHosts"] = "127.0.0.1;localhost";
        config["Logging"] = JsonNode.Parse("""{ "LogLevel": { "Yarp": "Error" } }""");
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();
        var configuration = gateway.Services.GetRequiredService<IConfiguration>();

        async Task<HttpStatusCode> ForeignHostAsync()
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/");
            request.Headers.Host = "elsewhere.example";
            using var response = await client.SendAsync(request);
            return response.StatusCode;
        }

        async Task AssertHostsFilteredAsync()
        {
            Assert.Equal(HttpStatusCode.BadRequest, await ForeignHostAsync());
            Assert.Equal("a", await client.GetStringAsync("/"));
        }

        await AssertHostsFilteredAsync();
        if (what == "deleted")
        {
            File.Delete(gateway.ConfigPath);
        }
        else
        {
            gateway.WriteConfig("{ \"AllowedHosts\": ");
        }

        Assert.True(await Eventually.TrueAsync(() => gateway.Counter(Rejected) >= 1, ReloadBound), $"{what}: no rejection counted");
        Assert.Equal("127.0.0.1;localhost", configuration["AllowedHosts"]);
        Assert.Equal("Error", configuration["Logging:LogLevel:Yarp"]);
        await AssertHostsFilteredAsync();

        // Fixed: the new contents apply.
        config["AllowedHosts"] = "*";
        gateway.WriteConfig(config);
        Assert.True(await Eventually.TrueAsync(() => configuration["AllowedHosts"] == "*", ReloadBound), "the fixed file was not applied");
        Assert.True(await Eventually.TrueAsync(async () => await ForeignHostAsync() == HttpStatusCode.OK, ReloadBound), "AllowedHosts * not applied");
    }

    [Fact]
    public async Task AKeyNothingReads_IsNamedWithTheNearestSetting_AtStartAndWhenAReloadChangesThem()
    {
        await using var a = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (a, null));
        config["ReverseProxy"]!["Clusters"]!["c1"]!["LoadBalancerPolicy"] = "WeightedRoundRobin"; // a typo: YARP ignores it
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        static bool Unknown(string line) => line.Contains("[UnknownSettings]", StringComparison.Ordinal);

        var atStart = Assert.Single(gateway.Logs.Lines, Unknown);
        Assert.Contains("ReverseProxy:Clusters:c1:LoadBalancerPolicy (did you mean LoadBalancingPolicy?)", atStart, StringComparison.Ordinal);

        var next = ProxyConfigJson.CatchAll("RoundRobin", (a, null));
        next["Gateway"] = JsonNode.Parse("""{ "Shutdown": { "DrainDelai": "00:00:01" } }""");
        gateway.WriteConfig(next);

        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Count(Unknown) == 2, ReloadBound), string.Join(" | ", gateway.Logs.Lines.Where(Unknown)));
        var afterReload = gateway.Logs.Lines.Where(Unknown).Last();
        Assert.Contains("Gateway:Shutdown:DrainDelai (did you mean DrainDelay?)", afterReload, StringComparison.Ordinal);
        Assert.DoesNotContain("LoadBalancerPolicy", afterReload, StringComparison.Ordinal);
    }

    /// <summary>With one request held at the backend, a second one gets 503: the global limit in force is 1.</summary>
    private static async Task AssertALimitOfOneAsync(HttpClient client, TestBackend backend)
    {
        var held = client.GetAsync("/hold");
        Assert.True(await Eventually.TrueAsync(() => backend.Held == 1, ReloadBound));
        using var second = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, second.StatusCode);
        backend.Gate.SetResult();
        Assert.Equal(HttpStatusCode.OK, (await held).StatusCode);
    }

    private static string Cluster(string clusterExtra, string destination) => $$"""
        { "ReverseProxy": {
            "Routes": { "all": { "ClusterId": "c1", "Match": { "Path": "/{**catch-all}" } } },
            "Clusters": { "c1": { {{clusterExtra}} "Destinations": { "a": { {{destination}} } } } } } }
        """;
}
