using System.Diagnostics.Metrics;
using YarpGateway.Telemetry;
using YarpGateway.WebSockets;

namespace YarpGateway.Tests.Telemetry;

/// <summary>A <see cref="GatewayMetrics"/> for unit tests: real instruments on plain meters that nothing listens to.</summary>
internal static class TestMetrics
{
    public static GatewayMetrics Create() => new(new PlainMeterFactory(), new TrafficCounters(), new WebSocketCounters());

    private sealed class PlainMeterFactory : IMeterFactory
    {
        public Meter Create(MeterOptions options) => new(options);

        public void Dispose()
        {
        }
    }
}
