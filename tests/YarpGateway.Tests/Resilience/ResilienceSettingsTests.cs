using YarpGateway.Configuration;
using YarpGateway.Resilience;

namespace YarpGateway.Tests.Resilience;

public class ResilienceSettingsTests
{
    [Fact]
    public void RouteOverridesClusterOverridesOptions()
    {
        var options = new ResilienceOptions();
        var cluster = new Dictionary<string, string> { ["MaxRetries"] = "1", ["TryTimeout"] = "00:00:03", ["RetryStatusCodes"] = "503" };
        var route = new Dictionary<string, string> { ["MaxRetries"] = "4", ["RetryIdempotent"] = "true" };

        var settings = ResilienceSettings.Resolve(options, cluster, route);

        Assert.Equal(4, settings.MaxRetries);
        Assert.Equal(TimeSpan.FromSeconds(3), settings.TryTimeout);
        Assert.Equal([503], settings.RetryStatusCodes);
        Assert.True(settings.RetryIdempotent);
        Assert.Equal(TimeSpan.FromSeconds(2), ResilienceSettings.ConnectTimeout(options, cluster));
        Assert.Equal(TimeSpan.FromMilliseconds(500), ResilienceSettings.ConnectTimeout(options, new Dictionary<string, string> { ["ConnectTimeout"] = "00:00:00.500" }));
        Assert.Equal(65536, ResilienceSettings.ExpectContinueAbove(options, cluster));
        Assert.Equal(0, ResilienceSettings.ExpectContinueAbove(options, new Dictionary<string, string> { ["ExpectContinueAbove"] = "0" }));
    }

    [Theory]
    [InlineData("MaxRetries", "-1", true)]
    [InlineData("MaxRetries", "11", true)]
    [InlineData("TryTimeout", "-00:00:01", true)]
    [InlineData("TryTimeout", "soon", true)]
    [InlineData("RetryStatusCodes", "200,503", false)]
    [InlineData("RetryStatusCodes", "abc", false)]
    [InlineData("RetryIdempotent", "yes", true)]
    [InlineData("ConnectTimeout", "0", false)]
    [InlineData("ExpectContinueAbove", "-1", false)]
    [InlineData("ExpectContinueAbove", "64k", false)]
    [InlineData("OutlierEjection.FailureRate", "1.5", false)]
    [InlineData("OutlierEjection.MaxEjectedPercent", "101", false)]
    [InlineData("OutlierEjection.ConsecutiveFailures", "0", false)]
    public void BadMetadata_IsAnErrorNamingTheKey(string key, string value, bool onRoute)
    {
        var metadata = new Dictionary<string, string> { [key] = value };
        var errors = new List<ConfigError>();

        ResilienceSettings.Validate(metadata, "X:Metadata", onRoute, errors);
        OutlierEjectionSettings.Validate(metadata, "X:Metadata", errors);

        var error = Assert.Single(errors);
        Assert.Equal("X:Metadata:" + key, error.Key);
        Assert.Contains($"'{value}'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OptionsValidator_ListsEveryBadValue()
    {
        var options = new ResilienceOptions
        {
            MaxRetries = -1,
            RetryStatusCodes = [200, 503, 404],
            RetryBaseDelay = TimeSpan.Zero,
            MaxRetryBodyBytes = -1,
            TryTimeout = TimeSpan.FromSeconds(-1),
            ConnectTimeout = TimeSpan.FromSeconds(-2),
            ExpectContinueAbove = -1,
            RetryBudget = new RetryBudgetOptions { Ratio = 1.5, MinRetriesPerSecond = -1, Window = TimeSpan.Zero },
        };

        var failures = new ResilienceOptionsValidator().Validate(null, options).Failures!.ToList();

        string[] expected =
        [
            "MaxRetries must be from 0 to 10", "RetryStatusCodes: 200 is not", "RetryStatusCodes: 404 is not", "RetryBaseDelay must be positive",
            "MaxRetryBodyBytes must not be negative", "TryTimeout must be positive", "ConnectTimeout must be positive",
            "ExpectContinueAbove must not be negative", "RetryBudget:Ratio must be from 0 to 1", "RetryBudget:MinRetriesPerSecond must not be negative", "RetryBudget:Window must be from 1 s",
        ];
        foreach (var text in expected)
        {
            Assert.Contains(failures, f => f.Contains("Gateway:Resilience:" + text, StringComparison.Ordinal));
        }

        Assert.Equal(expected.Length, failures.Count);
        Assert.True(new ResilienceOptionsValidator().Validate(null, new ResilienceOptions()).Succeeded);
    }

    [Fact]
    public void ConfiguredStatusList_ReplacesTheDefaultRatherThanAddingToIt()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["R:RetryStatusCodes:0"] = "503" }).Build();

        var options = configuration.GetSection("R").Get<ResilienceOptions>()!;

        Assert.Equal([503], ResilienceSettings.Resolve(options, null, null).RetryStatusCodes);
        Assert.Equal([502, 503, 504], ResilienceSettings.Resolve(new ResilienceOptions(), null, null).RetryStatusCodes.Order());
    }

    [Theory]
    [InlineData("http://10.0.0.5/", "2.0", HttpVersionPolicy.RequestVersionOrLower, true)] // YARP's default: no ALPN, so HTTP/1.1
    [InlineData("http://10.0.0.5/", "2.0", HttpVersionPolicy.RequestVersionExact, false)] // h2c
    [InlineData("http://10.0.0.5/", "1.1", HttpVersionPolicy.RequestVersionOrHigher, true)]
    [InlineData("https://api.example/", "2.0", HttpVersionPolicy.RequestVersionOrLower, false)] // ALPN decides
    [InlineData("https://api.example/", "1.1", HttpVersionPolicy.RequestVersionOrLower, true)]
    [InlineData("https://api.example/", "1.1", HttpVersionPolicy.RequestVersionOrHigher, false)]
    [InlineData("HTTPS://api.example/", "1.1", HttpVersionPolicy.RequestVersionExact, true)]
    public void ExpectContinue_OnlyWhereTheBackendConnectionIsHttp11ForCertain(string prefix, string version, HttpVersionPolicy policy, bool expected)
        => Assert.Equal(expected, YarpGateway.Endpoints.BackendHttpVersion.IsHttp11(prefix, Version.Parse(version), policy));
}
