using System.Diagnostics.Metrics;

namespace YarpGateway.Telemetry;

/// <summary>The scheduler's instruments: the probe's queueing delay, the thread pool's backlog and size.</summary>
internal sealed class SchedulerMetrics
{
    private static readonly double[] Buckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

    public SchedulerMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(GatewayMeter.Name);
        Delay = meter.CreateHistogram(
            "gateway.scheduler.delay", unit: "s",
            description: "Time a work item queued to the thread pool waited before it ran (measured by a probe every 100 ms).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = Buckets });
        SocketDelay = meter.CreateHistogram(
            "gateway.scheduler.socket_delay", unit: "s",
            description: "Time a byte sent every 100 ms over a loopback connection waited for its receive to complete and run: the socket engine's lateness (where requests run with inline completions).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = Buckets });
        meter.CreateObservableGauge("gateway.scheduler.pending_work_items", () => ThreadPool.PendingWorkItemCount, unit: "{work_item}", description: "Work items queued to the thread pool and not yet started.");
        meter.CreateObservableGauge("gateway.scheduler.threads", () => ThreadPool.ThreadCount, unit: "{thread}", description: "Thread-pool threads.");
    }

    /// <summary>The scheduler probe records into this.</summary>
    public Histogram<double> Delay { get; }

    /// <summary>The socket-engine probe records into this.</summary>
    public Histogram<double> SocketDelay { get; }
}
