using System.Diagnostics.Metrics;
using YarpGateway.Resilience;

namespace YarpGateway.Tests.Telemetry;

/// <summary>Metrics for unit tests: real instruments on plain meters that nothing listens to.</summary>
internal static class TestMetrics
{
    public static ResilienceMetrics Resilience() => new(new PlainMeterFactory());

    public static YarpGateway.Configuration.ConfigMetrics Config() => new(new PlainMeterFactory());

    public static YarpGateway.Telemetry.SchedulerMetrics Scheduler() => new(new PlainMeterFactory());

    private sealed class PlainMeterFactory : IMeterFactory
    {
        public Meter Create(MeterOptions options) => new(options);

        public void Dispose()
        {
        }
    }
}
