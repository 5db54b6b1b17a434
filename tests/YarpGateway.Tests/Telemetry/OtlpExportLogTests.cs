using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using YarpGateway.Telemetry;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Telemetry;

public class OtlpExportLogTests
{
    private sealed class NoLifetime : IHostApplicationLifetime
    {
        public CancellationToken ApplicationStarted => CancellationToken.None;

        public CancellationToken ApplicationStopping => CancellationToken.None;

        public CancellationToken ApplicationStopped => CancellationToken.None;

        public void StopApplication()
        {
        }
    }

    [Fact]
    public void AFailureIsLoggedAtOnce_ThenEveryFiveMinutesWithItsCount_AndTheRecoveryOnce()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-30T02:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        using var logs = new CapturingLoggerProvider();
        var target = new OtlpExportTarget { Endpoint = new Uri("http://collector:4318/v1/metrics"), Interval = TimeSpan.FromSeconds(15) };
        using var log = new OtlpExportLog(target, clock, new NoLifetime(), new Logger<OtlpExportLog>(new SingleProviderFactory(logs)));

        for (var i = 0; i < 20; i++) // 20 failed exports, one each interval: 4 min 45 s
        {
            log.Failed("http://collector:4318/v1/metrics", "Connection refused (collector:4318)");
            log.Check();
            clock.Advance(target.Interval);
        }

        Assert.Single(logs.Lines, l => l.Contains("[OtlpExportFailed] OTLP export of metrics to http://collector:4318/v1/metrics failed: Connection refused (collector:4318).", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Lines, l => l.Contains("[OtlpExportStillFailing]", StringComparison.Ordinal));

        log.Failed("http://collector:4318/v1/metrics", "Connection refused (collector:4318)"); // 5 minutes after the first
        Assert.Single(logs.Lines, l => l.Contains("[OtlpExportStillFailing] OTLP export of metrics to http://collector:4318/v1/metrics still fails: 21 failed attempts since 2026-11-30 02:00:00Z", StringComparison.Ordinal));

        clock.Advance(target.Interval); // one quiet interval: not yet
        log.Check();
        Assert.DoesNotContain(logs.Lines, l => l.Contains("[OtlpExportRecovered]", StringComparison.Ordinal));
        clock.Advance(target.Interval + TimeSpan.FromSeconds(1));
        log.Check();
        log.Check();
        Assert.Single(logs.Lines, l => l.Contains("[OtlpExportRecovered] OTLP export of metrics to http://collector:4318/v1/metrics works again, after 21 failed attempts over 00:05:00.", StringComparison.Ordinal));

        log.Failed("http://collector:4318/v1/metrics", "Response status code does not indicate success: 404 (Not Found)."); // a new outage: said at once
        Assert.Equal(2, logs.Lines.Count(l => l.Contains("[OtlpExportFailed]", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("System.Net.Http.HttpRequestException: Connection refused (127.0.0.1:9)\n   at System.Net.Http...", "Connection refused (127.0.0.1:9)")]
    [InlineData("System.Net.Http.HttpRequestException: Response status code does not indicate success: 404 (Not Found).", "Response status code does not indicate success: 404 (Not Found).")]
    [InlineData("Status(StatusCode=\"Unavailable\", Detail=\"no\")", "Status(StatusCode=\"Unavailable\", Detail=\"no\")")]
    public void Describe_IsTheFirstLine_WithoutTheExceptionsTypeName(string exception, string expected)
        => Assert.Equal(expected, OtlpExportLog.Describe(exception));

    // Before: a collector that was down, or answered 404, lost every export without a line in the log.
    [Fact]
    public async Task OnTheRealProcess_ACollectorThatIsDown_IsLogged_AndItsComingUpToo()
    {
        var port = LoopbackPort.Unused();
        var path = ProxyConfigJson.WriteTemp("yarpgateway-otlp-", "{}");
        using var gateway = GatewayProcess.StartOnLoopback(path,
            $"--Gateway:Telemetry:Otlp:Endpoint=http://127.0.0.1:{port}", "--Gateway:Telemetry:Otlp:Protocol=HttpProtobuf", "--Gateway:Telemetry:Otlp:ExportInterval=00:00:01");
        await gateway.FindEndpointsAsync();

        Assert.True(await Eventually.TrueAsync(() => gateway.StandardOutput.Contains($"Metrics are pushed over OTLP (HttpProtobuf) to http://127.0.0.1:{port}/v1/metrics every 00:00:01", StringComparison.Ordinal)
            && gateway.StandardOutput.Contains($"OTLP export of metrics to http://127.0.0.1:{port}/v1/metrics failed: Connection refused", StringComparison.Ordinal), TimeSpan.FromSeconds(15)), gateway.StandardOutput);

        await using var collector = await TestBackend.StartAsync("collector", port);
        Assert.True(await Eventually.TrueAsync(() => gateway.StandardOutput.Contains($"OTLP export of metrics to http://127.0.0.1:{port}/v1/metrics works again", StringComparison.Ordinal), TimeSpan.FromSeconds(15)), gateway.StandardOutput);
        Assert.Contains("/v1/metrics", collector.RawTargets);
        Assert.Single(gateway.StandardOutput.Split('\n'), l => l.Contains("failed: Connection refused", StringComparison.Ordinal));
    }

    private sealed class SingleProviderFactory(ILoggerProvider provider) : ILoggerFactory
    {
        public void AddProvider(ILoggerProvider provider)
        {
        }

        public ILogger CreateLogger(string categoryName) => provider.CreateLogger(categoryName);

        public void Dispose()
        {
        }
    }
}
