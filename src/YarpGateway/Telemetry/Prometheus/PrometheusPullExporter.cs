using System.Text;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace YarpGateway.Telemetry.Prometheus;

/// <summary>
/// A pull-mode OpenTelemetry exporter: nothing is pushed; a scrape calls <see cref="ScrapeAsync"/>,
/// which collects (the reader exports only when asked) and returns the text. Scrapes are one at a
/// time. Small and self-contained so that OpenTelemetry.Exporter.Prometheus.AspNetCore can replace
/// it once the package registry has it.
/// </summary>
internal sealed class PrometheusPullExporter : BaseExporter<Metric>
{
    private readonly SemaphoreSlim _scrapeGate = new(1, 1);
    private StringBuilder? _output;

    public PrometheusPullExporter()
    {
        Reader = new BaseExportingMetricReader(this);
    }

    /// <summary>Add this to the meter provider.</summary>
    public MetricReader Reader { get; }

    public async Task<string> ScrapeAsync(CancellationToken cancellationToken)
    {
        await _scrapeGate.WaitAsync(cancellationToken);
        try
        {
            var output = new StringBuilder(16 * 1024);
            if (ParentProvider is { } provider)
            {
                PrometheusTextWriter.WriteTargetInfo(output, provider.GetResource());
            }

            _output = output;
            Reader.Collect(timeoutMilliseconds: 5000);
            _output = null;
            return output.ToString();
        }
        finally
        {
            _scrapeGate.Release();
        }
    }

    public override ExportResult Export(in Batch<Metric> batch)
    {
        if (_output is not { } output)
        {
            return ExportResult.Success; // a collection no scrape asked for (shutdown)
        }

        var metrics = new List<Metric>();
        foreach (var metric in batch)
        {
            metrics.Add(metric);
        }

        PrometheusTextWriter.Write(output, metrics);
        return ExportResult.Success;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _scrapeGate.Dispose();
        }

        base.Dispose(disposing);
    }
}
