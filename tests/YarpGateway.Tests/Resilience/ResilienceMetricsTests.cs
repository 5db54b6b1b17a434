using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Configuration;
using YarpGateway.Resilience;
using YarpGateway.Telemetry;

namespace YarpGateway.Tests.Resilience;

public sealed class ResilienceMetricsTests : IDisposable
{
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly MeterListener _listener = new();
    private readonly List<(string Instrument, long Value, string Tags)> _measured = [];

    public ResilienceMetricsTests()
    {
        var meterFactory = _services.GetRequiredService<IMeterFactory>();
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            // This test's meters only: other tests in the process create gateway meters too.
            if (instrument.Meter.Name == GatewayMeter.Name && ReferenceEquals(instrument.Meter.Scope, meterFactory))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            lock (_measured)
            {
                _measured.Add((instrument.Name, value, string.Join(',', tags.ToArray().Select(t => $"{t.Key}={t.Value}"))));
            }
        });
        _listener.Start();
    }

    public void Dispose()
    {
        _listener.Dispose();
        _services.Dispose();
    }

    private int ZeroSeries(string instrument) => _measured.Where(m => m.Instrument == instrument && m.Value == 0).Select(m => m.Tags).Distinct().Count();

    [Fact]
    public void ZeroSeries_StayWithinHalfOfOpenTelemetrysCap_SoRealOnesKeepTheirOwn()
    {
        // 500 clusters of four destinations: zeros for every one filled the retry and error
        // instruments past OpenTelemetry's 2,000 series (tried), and real events went to overflow.
        var metrics = new ResilienceMetrics(_services.GetRequiredService<IMeterFactory>());
        var clusters = Enumerable.Range(0, 500).Select(i => new ClusterConfig
        {
            ClusterId = $"c{i}",
            Destinations = Enumerable.Range(0, 4).ToDictionary(d => $"d{d}", d => new DestinationConfig { Address = $"http://10.0.{i % 250}.{d}/" }),
        }).ToArray();

        metrics.ConfigurationApplied([new Config(clusters)]);
        metrics.ConfigurationApplied([new Config(clusters)]); // a reload publishes again: the same series

        foreach (var instrument in new[] { "gateway.proxy.retries", "gateway.proxy.timeouts", "gateway.proxy.errors" })
        {
            Assert.InRange(ZeroSeries(instrument), 900, ResilienceMetrics.MaxZeroSeries);
        }

        _listener.RecordObservableInstruments(); // attempts are read, not recorded
        Assert.Equal(500, ZeroSeries("gateway.proxy.attempts")); // one a cluster: all of them fit
        Assert.Equal(500, ZeroSeries("gateway.outlier.ejections")); // exported by cluster, not destination

        Assert.Equal(0, ZeroSeries("gateway.proxy.retries") % 7); // whole clusters: all of a cluster's reasons or none
        Assert.Equal(0, ZeroSeries("gateway.proxy.timeouts") % 4);
        metrics.Retry("c499", "status_503"); // a cluster past the budget still counts
        Assert.Contains(_measured, m => m.Instrument == "gateway.proxy.retries" && m.Value == 1 && m.Tags == "cluster=c499,reason=status_503");
    }

    private sealed class Config(IReadOnlyList<ClusterConfig> clusters) : IProxyConfig
    {
        public IReadOnlyList<RouteConfig> Routes { get; } = [];

        public IReadOnlyList<ClusterConfig> Clusters { get; } = clusters;

        public IChangeToken ChangeToken { get; } = new CancellationChangeToken(CancellationToken.None);
    }
}
