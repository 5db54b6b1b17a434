using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Yarp.ReverseProxy.Configuration;
using YarpGateway.Telemetry;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Telemetry;

/// <summary>
/// Series per metric (<c>Gateway:Telemetry:MaxSeriesPerMetric</c>): a configuration with more routes, clusters or
/// destinations than a metric keeps folds the rest into one <c>otel_metric_overflow</c> series. Tried with 3,000
/// routes and clusters of two destinations each: sixteen metrics overflowed, with nothing in the log.
/// </summary>
public class SeriesLimitTests
{
    [Theory]
    [InlineData(99, true)]
    [InlineData(100, false)]
    [InlineData(100_000, false)]
    [InlineData(100_001, true)]
    public void MaxSeriesPerMetric_OutsideItsBounds_IsAStartUpError(int value, bool refused)
    {
        var result = new TelemetryOptionsValidator().Validate(null, new TelemetryOptions { MaxSeriesPerMetric = value });
        Assert.Equal(refused, result.Failed);
        if (refused)
        {
            Assert.Contains($"Gateway:Telemetry:MaxSeriesPerMetric must be between 100 and 100000; got {value}.", result.Failures!);
        }
    }

    [Fact]
    public void AConfigurationPastTheLimit_IsLoggedWhenItGoesOver_AndWhenItIsBackUnder_NotOnEveryReload()
    {
        var logs = new CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(builder => builder.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        var check = new SeriesLimitCheck(new MetricSeriesLimit(100), factory.CreateLogger<SeriesLimitCheck>());

        check.ConfigurationApplied([Config(clusters: 50, destinationsEach: 1)]);
        Assert.Empty(logs.Lines);

        check.ConfigurationApplied([Config(clusters: 120, destinationsEach: 1)]);
        var over = Assert.Single(logs.Lines);
        Assert.StartsWith("Warning", over, StringComparison.Ordinal);
        Assert.Contains("[MetricSeriesLimitExceeded] The proxy configuration has 120 routes, 120 clusters and 120 destinations: more routes, clusters and destinations than the 100 series each metric keeps (Gateway:Telemetry:MaxSeriesPerMetric).", over, StringComparison.Ordinal);

        check.ConfigurationApplied([Config(clusters: 130, destinationsEach: 1)]); // the same kinds over: nothing new to say
        Assert.Single(logs.Lines);

        check.ConfigurationApplied([Config(clusters: 60, destinationsEach: 2)]); // only destinations now
        Assert.Equal(2, logs.Lines.Count);
        Assert.Contains("more destinations than the 100 series", logs.Lines.Last(), StringComparison.Ordinal);

        check.ConfigurationApplied([Config(clusters: 60, destinationsEach: 1)]);
        Assert.Equal(3, logs.Lines.Count);
        Assert.Contains("Information YarpGateway.Telemetry.SeriesLimitCheck[MetricSeriesLimitMet] The proxy configuration has 60 routes, 60 clusters and 60 destinations: within the 100 series", logs.Lines.Last(), StringComparison.Ordinal);

        check.ConfigurationApplied([Config(clusters: 61, destinationsEach: 1)]);
        Assert.Equal(3, logs.Lines.Count);
    }

    [Theory]
    [InlineData(false, false, false, null)]
    [InlineData(true, false, false, "routes")]
    [InlineData(false, true, true, "clusters and destinations")]
    [InlineData(true, true, true, "routes, clusters and destinations")]
    public void TheKindsOverTheLimit_AreNamedInWords(bool routes, bool clusters, bool destinations, string? expected)
        => Assert.Equal(expected, SeriesLimitCheck.Kinds(routes, clusters, destinations));

    // YARP gives its listeners the configuration as resolved: each pod of a DNS-discovered destination counts, and a
    // change in the pods is applied (and counted) like an edit.
    [Fact]
    public async Task DestinationsDiscoveredFromDns_CountOncePerPod_AndAsThePodsChange()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var dns = new Discovery.DnsDiscoveryTests.ScriptedResolver { Addresses = { ["pods.svc"] = [.. Enumerable.Range(1, 150).Select(i => $"10.0.{i / 250}.{i % 250}")] } };
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        var cluster = config["ReverseProxy"]!["Clusters"]!["c1"]!.AsObject();
        cluster["Metadata"] = new JsonObject { ["Discovery"] = "Dns" };
        cluster["Destinations"] = new JsonObject { ["pods"] = new JsonObject { ["Address"] = "http://pods.svc/" } };
        config["Gateway"] = new JsonObject
        {
            ["Discovery"] = new JsonObject { ["RefreshPeriod"] = "00:00:00.200" },
            ["Telemetry"] = new JsonObject { ["MaxSeriesPerMetric"] = 100 },
        };
        await using var gateway = await GatewayUnderTest.StartAsync(config, services =>
        {
            services.RemoveAll<Yarp.ReverseProxy.ServiceDiscovery.IDestinationResolver>();
            services.AddSingleton<Yarp.ReverseProxy.ServiceDiscovery.IDestinationResolver>(sp => ActivatorUtilities.CreateInstance<YarpGateway.Discovery.DnsDiscovery>(sp, dns));
        });

        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("[MetricSeriesLimitExceeded] The proxy configuration has 1 routes, 1 clusters and 150 destinations: more destinations than the 100 series", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)),
            "no line for 150 pods: " + string.Join('\n', gateway.Logs.Lines));

        dns.Addresses["pods.svc"] = ["10.0.0.1", "10.0.0.2"]; // a scale-down
        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("[MetricSeriesLimitMet] The proxy configuration has 1 routes, 1 clusters and 2 destinations", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)),
            "no line for the scale-down: " + string.Join('\n', gateway.Logs.Lines));
    }

    // On the real process: the limit is applied to the meter provider, which in-process tests share.
    [Fact]
    public async Task PastTheDefaultLimit_TheClustersSeriesOverflow_AndARaisedLimitKeepsThemAll()
    {
        await using var backend = await TestBackend.StartAsync("a");
        const int Clusters = 2_100;
        var config = ManyClusters(backend, Clusters);

        foreach (var (limit, overflows) in new[] { ((int?)null, true), (2_500, false) })
        {
            var configPath = ProxyConfigJson.WriteTemp("yarpgateway-series-", config);
            using var gateway = limit is { } raised
                ? GatewayProcess.StartOnLoopback(configPath, $"--Gateway:Telemetry:MaxSeriesPerMetric={raised}")
                : GatewayProcess.StartOnLoopback(configPath);
            var (proxy, management) = await gateway.FindEndpointsAsync();
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            using (var response = await http.GetAsync(new Uri(proxy, $"/c{Clusters - 1}/x")))
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }

            var scrape = await http.GetStringAsync(new Uri(management, "/metrics"));
            var clusterSeries = scrape.Split('\n').Count(l => l.StartsWith("gateway_cluster_available_destinations{cluster=", StringComparison.Ordinal));
            var overflowed = scrape.Contains("gateway_cluster_available_destinations{otel_metric_overflow=\"true\"}", StringComparison.Ordinal);
            Assert.True(overflows == overflowed, $"limit {limit?.ToString() ?? "default"}: overflow series {overflowed}, {clusterSeries} clusters with their own series");
            if (overflows)
            {
                Assert.InRange(clusterSeries, TelemetryOptions.DefaultMaxSeriesPerMetric - 10, TelemetryOptions.DefaultMaxSeriesPerMetric);
            }
            else
            {
                Assert.Equal(Clusters, clusterSeries);
            }

            Assert.Equal(overflows, gateway.StandardOutput.Contains("more routes, clusters and destinations than the 2000 series each metric keeps", StringComparison.Ordinal));
        }
    }

    private static JsonObject ManyClusters(TestBackend backend, int count)
    {
        var routes = new JsonObject();
        var clusters = new JsonObject();
        for (var i = 0; i < count; i++)
        {
            routes[$"r{i}"] = new JsonObject { ["ClusterId"] = $"c{i}", ["Match"] = new JsonObject { ["Path"] = $"/c{i}/{{**rest}}" } };
            clusters[$"c{i}"] = new JsonObject { ["Destinations"] = new JsonObject { ["d"] = new JsonObject { ["Address"] = backend.Address.ToString() } } };
        }

        return new JsonObject { ["ReverseProxy"] = new JsonObject { ["Routes"] = routes, ["Clusters"] = clusters } };
    }

    private static IProxyConfig Config(int clusters, int destinationsEach)
        => new InMemoryConfigProvider(
            [.. Enumerable.Range(0, clusters).Select(i => new RouteConfig { RouteId = $"r{i}", ClusterId = $"c{i}", Match = new RouteMatch { Path = $"/c{i}" } })],
            [.. Enumerable.Range(0, clusters).Select(i => new ClusterConfig
            {
                ClusterId = $"c{i}",
                Destinations = Enumerable.Range(0, destinationsEach).ToDictionary(d => $"d{d}", d => new DestinationConfig { Address = $"http://127.0.0.1:{1000 + d}/" }),
            })]).GetConfig();
}
