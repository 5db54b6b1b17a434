using Microsoft.Extensions.Time.Testing;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging.Abstractions;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.ServiceDiscovery;
using YarpGateway.Configuration;
using YarpGateway.Discovery;
using YarpGateway.Tests.Functional;
using YarpGateway.Tests.Resilience;

namespace YarpGateway.Tests.Discovery;

/// <summary><see cref="DnsDiscovery"/> over a resolver the test scripts (standing in for YARP's DNS resolver).</summary>
public class DnsDiscoveryTests
{
    /// <summary>Answers each host with the addresses the test set, or throws for the ones it marked failing.</summary>
    internal sealed class ScriptedResolver : IDestinationResolver
    {
        public Dictionary<string, string[]> Addresses { get; } = new(StringComparer.OrdinalIgnoreCase);

        public HashSet<string> Failing { get; } = new(StringComparer.OrdinalIgnoreCase);

        public int Calls { get; private set; }

        /// <summary>When set, resolved addresses use this port instead of the original one.</summary>
        public int? Ports { get; set; }

        public ValueTask<ResolvedDestinationCollection> ResolveDestinationsAsync(IReadOnlyDictionary<string, DestinationConfig> destinations, CancellationToken cancellationToken)
        {
            Calls++;
            var result = new Dictionary<string, DestinationConfig>();
            foreach (var (id, destination) in destinations)
            {
                var uri = new Uri(destination.Address);
                if (Failing.Contains(uri.Host))
                {
                    throw new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.HostNotFound);
                }

                foreach (var entry in Addresses.GetValueOrDefault(uri.Host, []))
                {
                    // "10.0.0.1", or "127.0.0.1:5000" for a test backend on a port of its own.
                    var (address, ownPort) = entry.LastIndexOf(':') is var colon and > 0 && !entry.Contains("::", StringComparison.Ordinal)
                        ? (entry[..colon], int.Parse(entry[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture))
                        : (entry, (int?)null);
                    var builder = new UriBuilder(uri) { Host = address };
                    if (ownPort is { } p)
                    {
                        builder.Port = p;
                    }

                    if (Ports is { } port)
                    {
                        builder.Port = port;
                    }

                    result[$"{id}[{entry}]"] = destination with { Address = builder.Uri.ToString(), Host = uri.Authority };
                }
            }

            return ValueTask.FromResult(new ResolvedDestinationCollection(result, null));
        }
    }

    private sealed class PlainMeterFactory : IMeterFactory
    {
        public Meter Create(MeterOptions options) => new(options);

        public void Dispose()
        {
        }
    }

    internal static DnsDiscovery Create(IDestinationResolver inner, TimeProvider time, params ClusterConfig[] clusters)
        => Create(inner, time, NullLogger<DnsDiscovery>.Instance, clusters);

    private static DnsDiscovery Create(IDestinationResolver inner, TimeProvider time, ILogger<DnsDiscovery> logger, params ClusterConfig[] clusters)
    {
        var configuration = new ConfigurationBuilder().Build();
        var options = new ReloadableOptions<DiscoveryOptions>(
            new Microsoft.Extensions.Options.OptionsFactory<DiscoveryOptions>([], []), configuration, new ConfigMetrics(new PlainMeterFactory()), NullLoggerFactory.Instance, DiscoveryOptions.SectionName);
        var services = new ServiceCollection()
            .AddSingleton<IProxyConfigProvider>(new Yarp.ReverseProxy.Configuration.InMemoryConfigProvider([], clusters))
            .BuildServiceProvider();
        return new DnsDiscovery(inner, services, options, new DiscoveryMetrics(new PlainMeterFactory()), time, logger);
    }

    private static ClusterConfig Cluster(params (string Id, string Address)[] destinations) => new()
    {
        ClusterId = "c1",
        Metadata = new Dictionary<string, string> { ["Discovery"] = "Dns" },
        Destinations = destinations.ToDictionary(d => d.Id, d => new DestinationConfig { Address = d.Address, Metadata = new Dictionary<string, string> { ["Weight"] = "3" } }),
    };

    [Fact]
    public async Task AHostName_BecomesOneDestinationPerAddress_KeepingItsHostAndWeight_IpAddressesPassAsTheyAre()
    {
        var dns = new ScriptedResolver { Addresses = { ["api.svc"] = ["10.0.0.1", "10.0.0.2"] } };
        var cluster = Cluster(("pods", "http://api.svc:8080/"), ("fixed", "http://10.9.9.9:80/"));
        var discovery = Create(dns, new FakeTimeProvider(), cluster);

        var resolved = await discovery.ResolveDestinationsAsync(cluster.Destinations!, CancellationToken.None);

        Assert.Equal(["fixed", "pods[10.0.0.1]", "pods[10.0.0.2]"], resolved.Destinations.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("api.svc:8080", resolved.Destinations["pods[10.0.0.1]"].Host);
        Assert.Equal("3", resolved.Destinations["pods[10.0.0.2]"].Metadata!["Weight"]);
        Assert.Equal("http://10.9.9.9:80/", resolved.Destinations["fixed"].Address);
        Assert.NotNull(resolved.ChangeToken);
    }

    [Fact]
    public async Task ADnsOutageAcrossManyClusters_TenLinesASecond_TheRestCounted()
    {
        // Every cluster's name fails at once: a line each, before (and each cluster's first resolution at start).
        var dns = new ScriptedResolver();
        var clusters = Enumerable.Range(0, 15).Select(i => new ClusterConfig
        {
            ClusterId = $"c{i}",
            Metadata = new Dictionary<string, string> { ["Discovery"] = "Dns" },
            Destinations = new Dictionary<string, DestinationConfig> { ["pods"] = new() { Address = $"http://api{i}.svc/" } },
        }).ToArray();
        foreach (var cluster in clusters)
        {
            dns.Failing.Add($"api{cluster.ClusterId[1..]}.svc");
        }

        var lines = new CapturingLoggerProvider();
        using var loggers = LoggerFactory.Create(builder => builder.AddProvider(lines));
        var time = new FakeTimeProvider();
        using var discovery = Create(dns, time, loggers.CreateLogger<DnsDiscovery>(), clusters);

        foreach (var cluster in clusters)
        {
            await discovery.ResolveDestinationsAsync(cluster.Destinations!, CancellationToken.None);
        }

        Assert.Equal(10, lines.Lines.Count(l => l.Contains("[DiscoveryFailed]", StringComparison.Ordinal)));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Single(lines.Lines, l => l.StartsWith(
            "Warning YarpGateway.Discovery.DnsDiscovery[ChangesHeldBack] 5 more destinations did not resolve (their last known addresses are kept) in the last second, in 5 cluster(s) (c10, c11, c12, c13, c14)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task PodsAddedAndRemoved_BetweenRefreshes_ShowInTheNextResolution()
    {
        var dns = new ScriptedResolver { Addresses = { ["api.svc"] = ["10.0.0.1", "10.0.0.2"] } };
        var time = new FakeTimeProvider();
        var cluster = Cluster(("pods", "http://api.svc/"));
        var discovery = Create(dns, time, cluster);
        var first = await discovery.ResolveDestinationsAsync(cluster.Destinations!, CancellationToken.None);

        dns.Addresses["api.svc"] = ["10.0.0.2", "10.0.0.3"]; // a rollout replaced one pod
        Assert.False(first.ChangeToken!.HasChanged);
        time.Advance(TimeSpan.FromSeconds(10)); // the refresh period
        Assert.True(first.ChangeToken.HasChanged); // YARP reloads, which resolves again
        var second = await discovery.ResolveDestinationsAsync(cluster.Destinations!, CancellationToken.None);

        Assert.Equal(["pods[10.0.0.2]", "pods[10.0.0.3]"], second.Destinations.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task AFailedResolution_KeepsTheLastKnownAddresses_AndRetriesSooner()
    {
        var dns = new ScriptedResolver { Addresses = { ["api.svc"] = ["10.0.0.1"] } };
        var time = new FakeTimeProvider();
        var cluster = Cluster(("pods", "http://api.svc/"));
        var discovery = Create(dns, time, cluster);
        await discovery.ResolveDestinationsAsync(cluster.Destinations!, CancellationToken.None);

        dns.Failing.Add("api.svc");
        var during = await discovery.ResolveDestinationsAsync(cluster.Destinations!, CancellationToken.None);
        Assert.Equal(["pods[10.0.0.1]"], during.Destinations.Keys);

        time.Advance(TimeSpan.FromSeconds(2)); // the retry period, not the 10 s refresh
        Assert.True(during.ChangeToken!.HasChanged);

        // No records at all (a headless Service with no ready pod) is a failure too: the last pods stay.
        dns.Failing.Clear();
        dns.Addresses["api.svc"] = [];
        var empty = await discovery.ResolveDestinationsAsync(cluster.Destinations!, CancellationToken.None);
        Assert.Equal(["pods[10.0.0.1]"], empty.Destinations.Keys);
    }

    [Fact]
    public async Task EachChangeOfState_IsLoggedOnce_AndARecoveryNamesTheAddresses_WhichMayBeNewPods()
    {
        using var lines = new Functional.CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(builder => builder.AddProvider(lines));
        var dns = new ScriptedResolver { Addresses = { ["api.svc"] = ["10.0.0.1"] } };
        var cluster = Cluster(("pods", "http://api.svc/"));
        var discovery = Create(dns, new FakeTimeProvider(), factory.CreateLogger<DnsDiscovery>(), cluster);
        await discovery.ResolveDestinationsAsync(cluster.Destinations!, CancellationToken.None);

        dns.Failing.Add("api.svc");
        await discovery.ResolveDestinationsAsync(cluster.Destinations!, CancellationToken.None);
        await discovery.ResolveDestinationsAsync(cluster.Destinations!, CancellationToken.None); // still failing: no second line
        dns.Failing.Clear();
        dns.Addresses["api.svc"] = ["10.0.0.7", "10.0.0.8"]; // the pods were replaced meanwhile
        await discovery.ResolveDestinationsAsync(cluster.Destinations!, CancellationToken.None);
        await discovery.ResolveDestinationsAsync(cluster.Destinations!, CancellationToken.None); // unchanged: no line

        Assert.Collection(
            lines.Lines,
            line => Assert.Contains("[DiscoveryChanged] Destination pods of cluster c1 (http://api.svc/) resolves to 1 address(es): pods[10.0.0.1].", line, StringComparison.Ordinal),
            line => Assert.Contains("[DiscoveryFailed]", line, StringComparison.Ordinal),
            line => Assert.Contains("[DiscoveryRecovered] Destination pods of cluster c1 (http://api.svc/) resolves again, to 2 address(es): pods[10.0.0.7], pods[10.0.0.8].", line, StringComparison.Ordinal));
    }

    [Fact]
    public async Task ANameThatNeverResolved_LeavesItsClusterEmpty_WithoutThrowing()
    {
        var dns = new ScriptedResolver { Failing = { "nowhere.svc" } };
        var cluster = Cluster(("pods", "http://nowhere.svc/"));
        var discovery = Create(dns, new FakeTimeProvider(), cluster);

        var resolved = await discovery.ResolveDestinationsAsync(cluster.Destinations!, CancellationToken.None);

        Assert.Empty(resolved.Destinations);
        Assert.NotNull(resolved.ChangeToken);
    }

    [Fact]
    public async Task AClusterWithoutDiscovery_IsPassedThroughUntouched()
    {
        var dns = new ScriptedResolver();
        var plain = new Dictionary<string, DestinationConfig> { ["a"] = new() { Address = "http://api.svc/" } };
        var discovery = Create(dns, new FakeTimeProvider(), new ClusterConfig { ClusterId = "plain", Destinations = plain });

        var resolved = await discovery.ResolveDestinationsAsync(plain, CancellationToken.None);

        Assert.Same(plain, resolved.Destinations);
        Assert.Null(resolved.ChangeToken);
        Assert.Equal(0, dns.Calls);
    }
}
