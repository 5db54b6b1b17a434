using System.Diagnostics;
using System.Diagnostics.Metrics;
using YarpGateway.Status;

namespace YarpGateway.Telemetry;

/// <summary>The proxied request duration, by route, cluster, destination and status class; and each destination's figures for the status page (<see cref="DestinationStats"/>).</summary>
internal sealed class RequestMetrics
{
    private static readonly double[] Buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    private readonly Histogram<double> _duration;
    private readonly DestinationStats _destinations;

    public RequestMetrics(IMeterFactory meterFactory, DestinationStats destinations)
    {
        _destinations = destinations;
        var meter = meterFactory.Create(GatewayMeter.Name);
        _duration = meter.CreateHistogram(
            "gateway.proxy.request.duration", unit: "s",
            description: "Proxied request duration by route, cluster, destination and status class (client_closed: the client left before a response started), admission and retries included; upgraded (WebSocket) requests are not recorded here.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = Buckets });
    }

    /// <summary>Records a finished request; <paramref name="clientGone"/>: the client left before any response started (<c>status_class="client_closed"</c>, nginx's 499).</summary>
    public void Request(string route, string? cluster, string? destination, int status, bool clientGone, TimeSpan duration)
    {
        var seconds = duration.TotalSeconds;
        if (cluster is not null && destination is not null)
        {
            _destinations.Record(cluster, destination, seconds, error: !clientGone && status >= 500);
        }

        if (_duration.Enabled)
        {
            _duration.Record(seconds, new TagList
            {
                { "route", route },
                { "cluster", cluster ?? "-" },
                { "destination", destination ?? "-" },
                { "status_class", clientGone ? "client_closed" : StatusClass(status) },
            });
        }
    }

    private static string StatusClass(int status) => status switch
    {
        < 200 => "1xx",
        < 300 => "2xx",
        < 400 => "3xx",
        < 500 => "4xx",
        _ => "5xx",
    };
}
