using Microsoft.Extensions.Configuration;
using YarpGateway.Configuration;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Configuration;

public class StartupOnlySectionsTests
{
    [Theory]
    [InlineData("Gateway:Transport:Backlog", "8192", "Gateway:Transport", "Backlog: added ('8192')")]
    [InlineData("Gateway:Http2:MaxStreamResets", "50", "Gateway:Http2", "MaxStreamResets: added ('50')")]
    [InlineData("Kestrel:Limits:Http2:MaxStreamsPerConnection", "10", "Kestrel", "Limits: added")]
    [InlineData("Gateway:Admission:MaxConcurrentConnections", "10", "Gateway:Admission:MaxConcurrentConnections", "Gateway:Admission:MaxConcurrentConnections")]
    [InlineData("Gateway:Telemetry:Otlp:Endpoint", "http://collector:4317", "Gateway:Telemetry:Otlp", "Endpoint: added ('http://collector:4317')")]
    [InlineData("Gateway:Telemetry:PerRequestGauges", "true", "Gateway:Telemetry:PerRequestGauges", "Gateway:Telemetry:PerRequestGauges")]
    [InlineData("Gateway:Telemetry:PlatformRequestDurations", "true", "Gateway:Telemetry:PlatformRequestDurations", "Gateway:Telemetry:PlatformRequestDurations")]
    [InlineData("Gateway:Telemetry:MaxSeriesPerMetric", "10000", "Gateway:Telemetry:MaxSeriesPerMetric", "Gateway:Telemetry:MaxSeriesPerMetric")]
    [InlineData("Gateway:OutputCache:SizeLimit", "1000", "Gateway:OutputCache (which policies exist, SizeLimit and MaximumBodySize)", "SizeLimit: added ('1000')")]
    [InlineData("Gateway:OutputCache:Policies:p:Duration", "00:00:10", "Gateway:OutputCache (which policies exist, SizeLimit and MaximumBodySize)", "Policies: added")]
    [InlineData("Gateway:Cors:Policies:web:Origins:0", "https://a.example", "Gateway:Cors (whether it has any policy)", "Policies: added ('defined')")]
    [InlineData("Authentication:Schemes:Other:Value", "s3cr3t", "Authentication (but for the settings of Schemes:Bearer)", "Schemes: added")] // names only: a signing key's value is under Value
    public void AnEditOfWhatIsReadAtStart_IsLoggedOnce_AndItsReturnToo(string key, string value, string section, string changed)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Gateway:Admission:Global:MaxConcurrency"] = "100",
        }).Build();
        var logs = new CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(builder => builder.AddProvider(logs));
        using var sections = new StartupOnlySections(configuration, () => [], factory.CreateLogger<StartupOnlySections>());

        configuration[key] = value;
        configuration.Reload();
        configuration.Reload(); // a save often raises several change events
        configuration[key] = null;
        configuration.Reload();

        Assert.Collection(logs.Lines,
            line =>
            {
                Assert.Contains($"[SectionNeedsRestart] {section} changed, and is read at start-up only", line, StringComparison.Ordinal);
                Assert.EndsWith($"Changed: {changed}.", line, StringComparison.Ordinal);
            },
            line => Assert.Contains($"[SectionRestored] {section} is back to the values the gateway started with.", line, StringComparison.Ordinal));
    }

    [Fact]
    public void AnEditOfALiveSetting_IsNotReported()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Gateway:OutputCache:Policies:p:Duration"] = "00:01:00",
            ["Gateway:Cors:Policies:web:Origins:0"] = "https://a.example",
            ["Gateway:RateLimiting:Policies:r:PermitLimit"] = "5",
        }).Build();
        var logs = new CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(builder => builder.AddProvider(logs));
        using var sections = new StartupOnlySections(configuration, () => [], factory.CreateLogger<StartupOnlySections>());

        configuration["Gateway:Admission:Global:MaxConcurrency"] = "50";
        configuration["Gateway:OutputCache:Policies:p:Duration"] = "00:00:30";
        configuration["Gateway:Cors:Policies:web:Origins:1"] = "https://b.example";
        configuration["Gateway:RateLimiting:Policies:r:PermitLimit"] = "7";
        configuration["Gateway:Telemetry:SaturationLogInterval"] = "00:00:30";
        configuration.Reload();

        Assert.Empty(logs.Lines);
    }

    [Fact]
    public void AnEditARestartWouldRefuse_IsAnError_NamingWhatStartUpWouldSay_ForThatSectionOnly()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([]).Build();
        var logs = new CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(builder => builder.AddProvider(logs));
        List<ConfigError> StartupChecks() =>
        [
            new("Gateway:Http2:MaxStreamResets", "Gateway:Http2:MaxStreamResets must not be negative; got -1."),
            new("Gateway:Http2Something", "another section's error"),
            new("Gateway:Admission:Global:MaxQueue", "a live section's error, which its own reload reports"),
        ];
        using var sections = new StartupOnlySections(configuration, StartupChecks, factory.CreateLogger<StartupOnlySections>());

        configuration["Gateway:Http2:MaxStreamResets"] = "-1";
        configuration.Reload();

        var line = Assert.Single(logs.Lines);
        Assert.Contains("[SectionChangeWouldFailRestart] Gateway:Http2 changed, and is read at start-up only: the gateway keeps the values it started with, and would not start with the new ones", line, StringComparison.Ordinal);
        Assert.EndsWith("Changed: MaxStreamResets: added ('-1'). Gateway:Http2:MaxStreamResets must not be negative; got -1.", line, StringComparison.Ordinal);
    }

    [Fact]
    public void OneReloadEditingSeveralParts_RunsTheStartUpChecksOnce_AndEachPartFindsItsSectionsErrors()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([]).Build();
        var logs = new CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(builder => builder.AddProvider(logs));
        var runs = 0;
        List<ConfigError> StartupChecks()
        {
            runs++;
            return [new("Gateway:OutputCache:SizeLimit", "Gateway:OutputCache:SizeLimit must be positive; got -1.")];
        }

        using var sections = new StartupOnlySections(configuration, StartupChecks, factory.CreateLogger<StartupOnlySections>());

        configuration["Gateway:Http2:MaxStreamResets"] = "50";
        configuration["Gateway:Transport:Backlog"] = "8192";
        configuration["Gateway:OutputCache:SizeLimit"] = "-1";
        configuration.Reload();

        Assert.Equal(1, runs);
        Assert.Equal(3, logs.Lines.Count);
        Assert.Contains(logs.Lines, line => line.Contains("[SectionChangeWouldFailRestart] Gateway:OutputCache (which policies exist, SizeLimit and MaximumBodySize) changed", StringComparison.Ordinal)
            && line.EndsWith("Gateway:OutputCache:SizeLimit must be positive; got -1.", StringComparison.Ordinal));
        Assert.Equal(2, logs.Lines.Count(line => line.Contains("[SectionNeedsRestart]", StringComparison.Ordinal)));
    }
}
