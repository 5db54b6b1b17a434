using Microsoft.Extensions.Time.Testing;
using YarpGateway.Telemetry;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Telemetry;

[Collection(TimingSensitive.Name)]
public class SchedulerDelayProbeTests
{
    [Fact]
    public async Task BlockingTheThreadPool_RaisesTheProbesP99()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")),
            "--Gateway:Telemetry:SchedulerProbeInterval=00:00:00.010");
        var probe = gateway.Services.GetRequiredService<SchedulerDelayProbe>();
        Assert.True(await Eventually.TrueAsync(() => probe.RecentP99() > 0, TimeSpan.FromSeconds(5)));
        var quiet = probe.RecentP99();

        // Occupy every thread-pool thread, and more than the pool has, for one bounded second.
        var blockers = Enumerable.Range(0, ThreadPool.ThreadCount + (Environment.ProcessorCount * 4))
            .Select(_ => ThreadPoolBlock(TimeSpan.FromSeconds(1)))
            .ToArray();
        await Task.WhenAll(blockers).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.True(await Eventually.TrueAsync(() => probe.RecentP99() >= 0.1, TimeSpan.FromSeconds(10)),
            $"p99 stayed at {probe.RecentP99()} s after the pool was blocked (quiet: {quiet} s)");

        Assert.True(quiet < 0.1, $"p99 was already {quiet} s before blocking");
    }

    [Fact]
    public async Task SinceLastRun_CountsOnlyTheLatenessBeyondTheProbeInterval()
    {
        // A probe interval longer than liveness's 5 s limit must not look like a wedged scheduler.
        var clock = new FakeTimeProvider();
        using var options = ProbeOptions("00:00:08");
        var metrics = new SchedulerMetrics(new TestMeterFactory());
        using var probe = new SchedulerDelayProbe(metrics, clock, options);
        using var sampled = FirstSample(metrics);
        await probe.StartAsync(CancellationToken.None);
        await sampled.Recorded.WaitAsync(TimeSpan.FromSeconds(10)); // the sample taken at start, before the clock moves

        clock.Advance(TimeSpan.FromSeconds(7)); // within the interval: on time
        Assert.Equal(TimeSpan.Zero, probe.SinceLastRun());
        clock.Advance(TimeSpan.FromSeconds(3)); // 10 s: 2 s late
        Assert.Equal(TimeSpan.FromSeconds(2), probe.SinceLastRun());
        await probe.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task FirstSample_IsTakenAtStart_NotAnIntervalLater()
    {
        // A scrape as soon as the gateway listens had no gateway_scheduler_delay_seconds series, which the dashboard and
        // the alerts query: a native AOT build started and served its first request within the first 100 ms interval.
        using var options = ProbeOptions("01:00:00");
        var metrics = new SchedulerMetrics(new TestMeterFactory());
        using var probe = new SchedulerDelayProbe(metrics, TimeProvider.System, options);
        using var sampled = FirstSample(metrics);
        await probe.StartAsync(CancellationToken.None);

        var first = await sampled.Recorded.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.InRange(first, 0, 10);
        await probe.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task DisposedAsSoonAsStarted_TheProbeThreadEndsQuietly()
    {
        // Its thread waits on the stop event: disposing the event under that wait threw on the probe's own thread,
        // which ended the process (seen in CI: the test host crashed as a gateway under test was disposed).
        using var options = ProbeOptions("00:00:00.001");
        for (var i = 0; i < 200; i++)
        {
            var probe = new SchedulerDelayProbe(new SchedulerMetrics(new TestMeterFactory()), TimeProvider.System, options);
            await probe.StartAsync(CancellationToken.None);
            probe.Dispose();
        }
    }

    /// <summary>Telemetry options read from a configuration that sets only the probe's interval (none: its default).</summary>
    internal static YarpGateway.Configuration.ReloadableOptions<TelemetryOptions> ProbeOptions(string? interval = null)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Gateway:Telemetry:SchedulerProbeInterval"] = interval }).Build();
        return new YarpGateway.Configuration.ReloadableOptions<TelemetryOptions>(
            new Microsoft.Extensions.Options.OptionsFactory<TelemetryOptions>([new Microsoft.Extensions.Options.ConfigureFromConfigurationOptions<TelemetryOptions>(configuration.GetSection(TelemetryOptions.SectionName))], []),
            configuration, new YarpGateway.Configuration.ConfigMetrics(new TestMeterFactory()), Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance, TelemetryOptions.SectionName);
    }

    [Fact]
    public async Task TheSocketProbe_MeasuresALoopbackReceive_AndSeesItsContinuationHeldUp()
    {
        using var probe = new SocketEngineProbe(new SchedulerMetrics(new TestMeterFactory()), TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger<SocketEngineProbe>.Instance);
        await probe.StartAsync(CancellationToken.None);
        var seen = TimeSpan.Zero;
        Assert.True(await Eventually.TrueAsync(() => (seen = probe.TakeMaxDelay()) > TimeSpan.Zero, TimeSpan.FromSeconds(5)), "no sample");
        Assert.True(seen < TimeSpan.FromMilliseconds(100), $"a quiet receive took {seen.TotalMilliseconds} ms");

        // In the test process socket continuations run on the thread pool: hold every pool thread for a second. Twice
        // as many blockers as it has threads now, as the pool keeps adding threads while they block (once, with the
        // threads the tests before had left, the continuation still found a free one: 18.8 ms).
        var blockers = Enumerable.Range(0, (ThreadPool.ThreadCount * 2) + (Environment.ProcessorCount * 8))
            .Select(_ => ThreadPoolBlock(TimeSpan.FromSeconds(1)))
            .ToArray();
        var worst = TimeSpan.Zero;
        Assert.True(await Eventually.TrueAsync(() => (worst = Max(worst, probe.TakeMaxDelay(), probe.Pending())) >= TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(10)),
            $"the socket probe saw at most {worst.TotalMilliseconds} ms");
        await Task.WhenAll(blockers).WaitAsync(TimeSpan.FromSeconds(30));
        await probe.StopAsync(CancellationToken.None);
    }

    private static TimeSpan Max(params TimeSpan[] values) => values.Max();

    /// <summary>Completes with the first delay <paramref name="metrics"/> records.</summary>
    private static Sample FirstSample(SchedulerMetrics metrics)
    {
        var recorded = new TaskCompletionSource<double>(TaskCreationOptions.RunContinuationsAsynchronously);
        var listener = new System.Diagnostics.Metrics.MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (ReferenceEquals(instrument, metrics.Delay))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<double>((_, value, _, _) => recorded.TrySetResult(value));
        listener.Start();
        return new Sample(listener, recorded.Task);
    }

    private sealed record Sample(System.Diagnostics.Metrics.MeterListener Listener, Task<double> Recorded) : IDisposable
    {
        public void Dispose() => Listener.Dispose();
    }

    private sealed class TestMeterFactory : System.Diagnostics.Metrics.IMeterFactory
    {
        public System.Diagnostics.Metrics.Meter Create(System.Diagnostics.Metrics.MeterOptions options) => new(options);

        public void Dispose()
        {
        }
    }

    private static Task ThreadPoolBlock(TimeSpan duration)
    {
        var done = new TaskCompletionSource();
        ThreadPool.UnsafeQueueUserWorkItem(state =>
        {
            Thread.Sleep(state.duration); // deliberately blocking a pool thread: that is the test
            state.done.SetResult();
        }, (duration, done), preferLocal: false);
        return done.Task;
    }

    [Fact]
    public async Task SaturationLine_HasEveryField()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")),
            "--Gateway:Telemetry:SaturationLogInterval=00:00:00.200");

        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("saturation sched_delay_p99_ms=", StringComparison.Ordinal)), TimeSpan.FromSeconds(5)));
        var line = gateway.Logs.Lines.First(l => l.Contains("saturation ", StringComparison.Ordinal));
        foreach (var field in new[] { "sched_delay_p99_ms=", "pending_work_items=", "accepts_per_s=", "closes_per_s=", "active_connections=", "upgraded=", "admission_rejected=", "admission_rate=", "admission_delay_ms=" })
        {
            Assert.Contains(field, line, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// An idle pod wrote a line every 10 s that said nothing had changed (8,640 a day). Now one line says it went quiet,
    /// then none until something moves. The test calls the line itself; the timer is set an hour out.
    /// </summary>
    [Fact]
    public async Task SaturationLine_OnceQuiet_IsNotWrittenAgainUntilSomethingMoves()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")),
            "--Gateway:Telemetry:SaturationLogInterval=01:00:00", "--Gateway:Telemetry:SchedulerProbeInterval=00:00:00.010"); // start-up's delays out of the p99 within 3 s
        var log = gateway.Services.GetRequiredService<SaturationLog>();
        var traffic = gateway.Services.GetRequiredService<YarpGateway.Endpoints.TrafficCounters>();

        string? last = null;
        Assert.True(await Eventually.TrueAsync(() => (last = log.Line()) is null, TimeSpan.FromSeconds(20)), $"an idle gateway kept writing its line: {last}");
        Assert.Null(log.Line());

        using (var client = gateway.CreateProxyClient())
        {
            Assert.Equal(System.Net.HttpStatusCode.OK, (await client.GetAsync("/x")).StatusCode);
        }

        Assert.NotNull(log.Line()); // a connection accepted
        Assert.True(await Eventually.TrueAsync(() => traffic.OpenConnections == 0, TimeSpan.FromSeconds(10)));
        var written = new List<string>();
        bool Quiet()
        {
            if (log.Line() is not { } line)
            {
                return true;
            }

            written.Add(line);
            return false;
        }

        Assert.True(await Eventually.TrueAsync(Quiet, TimeSpan.FromSeconds(20)));
        Assert.Contains("accepts_per_s=0 closes_per_s=0 active_connections=0 in_flight=0", written[^1], StringComparison.Ordinal); // the line that says it went quiet
    }

    /// <summary>The interval is live: the reload's line said an edit applied while the timer kept the interval it started with.</summary>
    [Fact]
    public async Task SaturationLine_AnEditedInterval_AppliesAtOnce()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1"));
        config["Gateway"] = System.Text.Json.Nodes.JsonNode.Parse("""{ "Telemetry": { "SaturationLogInterval": "01:00:00" } }""");
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("saturation sched_delay", StringComparison.Ordinal));

        config["Gateway"] = System.Text.Json.Nodes.JsonNode.Parse("""{ "Telemetry": { "SaturationLogInterval": "00:00:00.100" } }""");
        gateway.WriteConfig(config);

        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("saturation sched_delay", StringComparison.Ordinal)), TimeSpan.FromSeconds(15)),
            "no saturation line within 15 s of an interval of 100 ms");
    }
}

public class OtlpPushTests
{
    [Fact]
    public async Task WithAnEndpoint_MetricsArePushedThere()
    {
        // A loopback listener stands in for the collector: the push must at least connect to it.
        using var collector = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        collector.Start();
        var port = ((System.Net.IPEndPoint)collector.LocalEndpoint).Port;
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")),
            $"--Gateway:Telemetry:Otlp:Endpoint=http://127.0.0.1:{port}/", "--Gateway:Telemetry:Otlp:ExportInterval=00:00:01");

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        using var pushed = await collector.AcceptTcpClientAsync(timeout.Token);

        Assert.True(pushed.Connected);
    }
}
