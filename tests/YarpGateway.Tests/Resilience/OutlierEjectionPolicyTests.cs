using Microsoft.Extensions.Time.Testing;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;
using YarpGateway.Resilience;
using YarpGateway.Tests.Telemetry;

namespace YarpGateway.Tests.Resilience;

public class OutlierEjectionPolicyTests
{
    private sealed class RecordingHealthUpdater : IDestinationHealthUpdater
    {
        public List<(string Destination, DestinationHealth Health, TimeSpan Period)> Passive { get; } = [];

        public void SetActive(ClusterState cluster, IEnumerable<NewActiveDestinationHealth> newHealthStates)
        {
        }

        public void SetPassive(ClusterState cluster, DestinationState destination, DestinationHealth newHealth, TimeSpan reactivationPeriod)
        {
            Passive.Add((destination.DestinationId, newHealth, reactivationPeriod));
            destination.Health.Passive = newHealth;
        }
    }

    private static (ClusterState Cluster, DestinationState[] Destinations) Cluster(int count, Dictionary<string, string> metadata, string id = "c")
    {
        var config = new ClusterConfig
        {
            ClusterId = id,
            Metadata = metadata,
            HealthCheck = new HealthCheckConfig { Passive = new PassiveHealthCheckConfig { Enabled = true, Policy = "OutlierEjection", ReactivationPeriod = TimeSpan.FromMinutes(1) } },
        };
        var cluster = new ClusterState(id, new ClusterModel(config, new HttpMessageInvoker(new HttpClientHandler())));
        var destinations = Enumerable.Range(0, count).Select(i => new DestinationState($"d{i}", new DestinationModel(new DestinationConfig { Address = $"http://127.0.0.1:{1000 + i}" }))).ToArray();
        foreach (var d in destinations)
        {
            cluster.Destinations[d.DestinationId] = d;
        }

        return (cluster, destinations);
    }

    // As YARP applies a changed destination: same state, new model (its setter is YARP's own).
    private static void Change(DestinationState destination, Func<DestinationConfig, DestinationConfig> change)
        => typeof(DestinationState).GetProperty(nameof(DestinationState.Model))!.SetValue(destination, new DestinationModel(change(destination.Model.Config)));

    private static DefaultHttpContext Response(int status) => new DefaultHttpContext { Response = { StatusCode = status } };

    [Fact]
    public void ManyClustersEjectingAtOnce_TenLinesASecond_TheRestCounted()
    {
        // A backend many clusters share failing under traffic ejects a destination of each: a line each, before.
        var lines = new YarpGateway.Tests.Functional.CapturingLoggerProvider();
        var time = new FakeTimeProvider();
        using var loggers = LoggerFactory.Create(builder => builder.AddProvider(lines));
        using var policy = new OutlierEjectionPolicy(new RecordingHealthUpdater(), TestMetrics.Resilience(), time, loggers.CreateLogger<OutlierEjectionPolicy>());

        for (var i = 0; i < 30; i++)
        {
            var (cluster, d) = Cluster(2, new() { ["OutlierEjection.ConsecutiveFailures"] = "1", ["OutlierEjection.MinimumRequests"] = "1000" }, $"c{i}");
            policy.RequestProxied(Response(502), cluster, d[0]);
        }

        Assert.Equal(10, lines.Lines.Count(l => l.Contains("[DestinationEjected] Destination d0 of cluster c", StringComparison.Ordinal)));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Single(lines.Lines, l => l.StartsWith(
            "Warning YarpGateway.Resilience.OutlierEjectionPolicy[ChangesHeldBack] 20 more destinations were ejected in the last second, in 20 cluster(s) (c10, c11, c12, c13, c14, ...), not logged one by one", StringComparison.Ordinal));
    }

    [Fact]
    public void ConsecutiveFailures_EjectForTheReactivationPeriod_SuccessResetsTheCount()
    {
        var (cluster, d) = Cluster(4, new() { ["OutlierEjection.ConsecutiveFailures"] = "3", ["OutlierEjection.MinimumRequests"] = "1000" });
        var health = new RecordingHealthUpdater();
        var policy = new OutlierEjectionPolicy(health, TestMetrics.Resilience(), new FakeTimeProvider(), Microsoft.Extensions.Logging.Abstractions.NullLogger<OutlierEjectionPolicy>.Instance);

        policy.RequestProxied(Response(500), cluster, d[0]);
        policy.RequestProxied(Response(502), cluster, d[0]);
        policy.RequestProxied(Response(200), cluster, d[0]); // resets
        policy.RequestProxied(Response(503), cluster, d[0]);
        policy.RequestProxied(Response(503), cluster, d[0]);
        Assert.Empty(health.Passive);

        policy.RequestProxied(Response(504), cluster, d[0]);
        Assert.Equal([("d0", DestinationHealth.Unhealthy, TimeSpan.FromMinutes(1))], health.Passive);
    }

    [Fact]
    public void AnEjectedDestinationWhoseAddressChanges_IsReactivatedAtOnce_AndWhatWasCountedIsForgotten()
    {
        var (cluster, d) = Cluster(4, new() { ["OutlierEjection.ConsecutiveFailures"] = "3", ["OutlierEjection.MinimumRequests"] = "1000" });
        var health = new RecordingHealthUpdater();
        var policy = new OutlierEjectionPolicy(health, TestMetrics.Resilience(), new FakeTimeProvider(), Microsoft.Extensions.Logging.Abstractions.NullLogger<OutlierEjectionPolicy>.Instance);
        for (var i = 0; i < 3; i++)
        {
            policy.RequestProxied(Response(502), cluster, d[0]);
        }

        policy.RequestProxied(Response(502), cluster, d[1]);
        policy.RequestProxied(Response(502), cluster, d[1]);

        // Another setting of d0 changes (its weight): still the same backend, still ejected.
        Change(d[0], c => c with { Metadata = new Dictionary<string, string> { ["Weight"] = "2" } });
        policy.OnClusterChanged(cluster);
        Assert.Equal([("d0", DestinationHealth.Unhealthy, TimeSpan.FromMinutes(1))], health.Passive);

        // Both addresses change: d0's ejection is lifted, and d1's two failures no longer count.
        Change(d[0], c => c with { Address = "http://127.0.0.1:2000" });
        Change(d[1], c => c with { Address = "http://127.0.0.1:2001" });
        policy.OnClusterChanged(cluster);
        Assert.Equal(("d0", DestinationHealth.Unknown, TimeSpan.Zero), health.Passive[^1]);

        policy.RequestProxied(Response(502), cluster, d[1]);
        policy.RequestProxied(Response(502), cluster, d[1]);
        policy.RequestProxied(Response(502), cluster, d[0]);
        policy.RequestProxied(Response(502), cluster, d[0]);
        Assert.Equal(2, health.Passive.Count);
    }

    [Fact]
    public void EjectedAgainAfterALift_ItsReactivationIsTheOneYarpStillHolds()
    {
        // YARP keeps the first reactivation it was given for a destination until it is due (later ones are ignored),
        // so an ejection soon after a lift ends when the lifted one was to, and says so.
        var (cluster, d) = Cluster(2, new() { ["OutlierEjection.ConsecutiveFailures"] = "1", ["OutlierEjection.MinimumRequests"] = "1000" });
        var health = new RecordingHealthUpdater();
        var time = new FakeTimeProvider();
        var policy = new OutlierEjectionPolicy(health, TestMetrics.Resilience(), time, Microsoft.Extensions.Logging.Abstractions.NullLogger<OutlierEjectionPolicy>.Instance);

        policy.RequestProxied(Response(502), cluster, d[0]);
        time.Advance(TimeSpan.FromSeconds(20));
        Change(d[0], c => c with { Address = "http://127.0.0.1:2000" });
        policy.OnClusterChanged(cluster);
        time.Advance(TimeSpan.FromSeconds(5));
        policy.RequestProxied(Response(502), cluster, d[0]); // the new address fails too

        Assert.Equal(
            [("d0", DestinationHealth.Unhealthy, TimeSpan.FromMinutes(1)), ("d0", DestinationHealth.Unknown, TimeSpan.Zero), ("d0", DestinationHealth.Unhealthy, TimeSpan.FromSeconds(35))],
            health.Passive);

        // Once that is past, an ejection gets the whole period again.
        time.Advance(TimeSpan.FromSeconds(35));
        d[0].Health.Passive = DestinationHealth.Unknown; // YARP's reactivation
        policy.RequestProxied(Response(502), cluster, d[0]);
        Assert.Equal(("d0", DestinationHealth.Unhealthy, TimeSpan.FromMinutes(1)), health.Passive[^1]);
    }

    [Fact]
    public void ASuccessOnAKnownDestination_AllocatesNothing() // it runs for every proxied request
    {
        var (cluster, d) = Cluster(1, []);
        var policy = new OutlierEjectionPolicy(new RecordingHealthUpdater(), TestMetrics.Resilience(), new FakeTimeProvider(), Microsoft.Extensions.Logging.Abstractions.NullLogger<OutlierEjectionPolicy>.Instance);
        var ok = Response(200);
        policy.RequestProxied(ok, cluster, d[0]); // the first sets up the destination's counters

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++)
        {
            policy.RequestProxied(ok, cluster, d[0]);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before); // a capturing factory cost 32 bytes a request
    }

    [Fact]
    public void FailureRate_OverTheWindow_Ejects()
    {
        var (cluster, d) = Cluster(4, new() { ["OutlierEjection.FailureRate"] = "0.5", ["OutlierEjection.MinimumRequests"] = "10", ["OutlierEjection.ConsecutiveFailures"] = "100" });
        var health = new RecordingHealthUpdater();
        var policy = new OutlierEjectionPolicy(health, TestMetrics.Resilience(), new FakeTimeProvider(), Microsoft.Extensions.Logging.Abstractions.NullLogger<OutlierEjectionPolicy>.Instance);

        for (var i = 0; i < 10; i++)
        {
            policy.RequestProxied(Response(i % 2 == 1 ? 500 : 200), cluster, d[1]); // the 10th is the 5th failure: 50 %
        }

        Assert.Single(health.Passive);
    }

    [Fact]
    public void NeverEjectsMoreThanTheMaximumShare()
    {
        var (cluster, d) = Cluster(4, new() { ["OutlierEjection.ConsecutiveFailures"] = "1" });
        var health = new RecordingHealthUpdater();
        var policy = new OutlierEjectionPolicy(health, TestMetrics.Resilience(), new FakeTimeProvider(), Microsoft.Extensions.Logging.Abstractions.NullLogger<OutlierEjectionPolicy>.Instance);

        foreach (var destination in d)
        {
            policy.RequestProxied(Response(500), cluster, destination);
        }

        Assert.Equal(2, health.Passive.Count); // 50 % of 4
        Assert.Equal(2, d.Count(x => x.Health.Passive == DestinationHealth.Unhealthy));
    }

    [Fact]
    public void ClientGoingAway_IsNotAFailure()
    {
        var (cluster, d) = Cluster(2, new() { ["OutlierEjection.ConsecutiveFailures"] = "1" });
        var health = new RecordingHealthUpdater();
        var policy = new OutlierEjectionPolicy(health, TestMetrics.Resilience(), new FakeTimeProvider(), Microsoft.Extensions.Logging.Abstractions.NullLogger<OutlierEjectionPolicy>.Instance);
        var context = new DefaultHttpContext();
        context.Features.Set<Yarp.ReverseProxy.Forwarder.IForwarderErrorFeature>(new TestForwarderError(Yarp.ReverseProxy.Forwarder.ForwarderError.RequestCanceled));

        policy.RequestProxied(context, cluster, d[0]);

        Assert.Empty(health.Passive);
    }

    [Fact]
    public void AnAttemptWhoseTryTimedOut_IsAFailure_ThoughYarpReportsItsCancellationAsTheClients()
    {
        var (cluster, d) = Cluster(2, new() { ["OutlierEjection.ConsecutiveFailures"] = "1" });
        var health = new RecordingHealthUpdater();
        var policy = new OutlierEjectionPolicy(health, TestMetrics.Resilience(), new FakeTimeProvider(), Microsoft.Extensions.Logging.Abstractions.NullLogger<OutlierEjectionPolicy>.Instance);
        var context = new DefaultHttpContext();
        context.Features.Set<Yarp.ReverseProxy.Forwarder.IForwarderErrorFeature>(new TestForwarderError(Yarp.ReverseProxy.Forwarder.ForwarderError.RequestCanceled));

        policy.AttemptEnded(context, cluster, d[0], tryTimedOut: false);
        Assert.Empty(health.Passive);

        policy.AttemptEnded(context, cluster, d[0], tryTimedOut: true);
        Assert.Equal(("d0", DestinationHealth.Unhealthy, TimeSpan.FromMinutes(1)), Assert.Single(health.Passive));
    }

    [Fact]
    public void RefusedConnects_EjectAfterTheirOwnLowerThreshold_AndASuccessResetsIt()
    {
        var (cluster, d) = Cluster(2, []);
        var health = new RecordingHealthUpdater();
        var policy = new OutlierEjectionPolicy(health, TestMetrics.Resilience(), new FakeTimeProvider(), Microsoft.Extensions.Logging.Abstractions.NullLogger<OutlierEjectionPolicy>.Instance);
        static DefaultHttpContext Refused()
        {
            var context = new DefaultHttpContext();
            var refused = new HttpRequestException(HttpRequestError.ConnectionError, "Connection refused");
            context.Features.Set<Yarp.ReverseProxy.Forwarder.IForwarderErrorFeature>(new TestForwarderError(Yarp.ReverseProxy.Forwarder.ForwarderError.Request, refused));
            return context;
        }

        policy.RequestProxied(Refused(), cluster, d[0]);
        policy.RequestProxied(Refused(), cluster, d[0]);
        policy.RequestProxied(Response(200), cluster, d[0]); // resets both counts
        policy.RequestProxied(Refused(), cluster, d[0]);
        policy.RequestProxied(Refused(), cluster, d[0]);
        Assert.Empty(health.Passive);

        policy.RequestProxied(Refused(), cluster, d[0]); // the third in a row, under the default 5 for other failures
        Assert.Equal([("d0", DestinationHealth.Unhealthy, TimeSpan.FromMinutes(1))], health.Passive);
    }

    [Fact]
    public void ARequestThatCouldNotBeBuilt_IsNotTheDestinationsFailure()
    {
        var (cluster, d) = Cluster(2, new() { ["OutlierEjection.ConsecutiveFailures"] = "1" });
        var health = new RecordingHealthUpdater();
        var policy = new OutlierEjectionPolicy(health, TestMetrics.Resilience(), new FakeTimeProvider(), Microsoft.Extensions.Logging.Abstractions.NullLogger<OutlierEjectionPolicy>.Instance);
        var context = new DefaultHttpContext();
        context.Features.Set<Yarp.ReverseProxy.Forwarder.IForwarderErrorFeature>(new TestForwarderError(Yarp.ReverseProxy.Forwarder.ForwarderError.Request, new NotSupportedException("The method is not supported.")));

        policy.RequestProxied(context, cluster, d[0]);
        Assert.Empty(health.Passive);

        var reset = new DefaultHttpContext();
        reset.Features.Set<Yarp.ReverseProxy.Forwarder.IForwarderErrorFeature>(new TestForwarderError(Yarp.ReverseProxy.Forwarder.ForwarderError.Request, new HttpRequestException(HttpRequestError.ResponseEnded, "ended", new IOException("reset"))));
        policy.RequestProxied(reset, cluster, d[0]);
        Assert.Single(health.Passive);
    }

    [Fact]
    public void PassiveHealthDefaults_EnableOutlierEjection_UnlessTheClusterSaysOtherwise()
    {
        var bare = PassiveHealthDefaults.Apply(new ClusterConfig { ClusterId = "c" });
        Assert.True(bare.HealthCheck!.Passive!.Enabled);
        Assert.Equal(OutlierEjectionPolicy.PolicyName, bare.HealthCheck.Passive.Policy);

        var period = PassiveHealthDefaults.Apply(new ClusterConfig { ClusterId = "c", HealthCheck = new HealthCheckConfig { Passive = new PassiveHealthCheckConfig { ReactivationPeriod = TimeSpan.FromSeconds(7) } } });
        Assert.Equal((true, "OutlierEjection", TimeSpan.FromSeconds(7)), (period.HealthCheck!.Passive!.Enabled, period.HealthCheck.Passive.Policy, period.HealthCheck.Passive.ReactivationPeriod));

        var other = PassiveHealthDefaults.Apply(new ClusterConfig { ClusterId = "c", HealthCheck = new HealthCheckConfig { Passive = new PassiveHealthCheckConfig { Policy = "TransportFailureRate" } } });
        Assert.Equal("TransportFailureRate", other.HealthCheck!.Passive!.Policy);

        var off = new ClusterConfig { ClusterId = "c", HealthCheck = new HealthCheckConfig { Passive = new PassiveHealthCheckConfig { Enabled = false } } };
        Assert.Same(off, PassiveHealthDefaults.Apply(off));
    }
}
