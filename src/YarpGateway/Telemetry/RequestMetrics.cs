using System.Diagnostics;
using System.Diagnostics.Metrics;
using YarpGateway.Status;

namespace YarpGateway.Telemetry;

/// <summary>
/// The proxied request duration, by route, cluster, destination and status class; each destination's figures for the
/// status page (<see cref="DestinationStats"/>); and the requests on the proxy endpoint that the gateway answered without
/// proxying them, by status.
/// </summary>
internal sealed class RequestMetrics
{
    private static readonly double[] Buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    /// <summary>Status codes as tag values, boxed once (a tag value is an object).</summary>
    private static readonly object[] StatusTags = Enumerable.Range(0, 600).Select(static status => (object)status).ToArray();

    private readonly Histogram<double> _duration;
    private readonly Counter<long> _notProxied;
    private readonly DestinationStats _destinations;

    public RequestMetrics(IMeterFactory meterFactory, DestinationStats destinations)
    {
        _destinations = destinations;
        var meter = meterFactory.Create(GatewayMeter.Name);
        _duration = meter.CreateHistogram(
            "gateway.proxy.request.duration", unit: "s",
            description: "Proxied request duration by route, cluster, destination and status class (client_closed: the client left before a response started), admission and retries included; upgraded (WebSocket) requests are not recorded here.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = Buckets });
        _notProxied = meter.CreateCounter<long>(
            "gateway.requests.not_proxied", unit: "{request}",
            description: "Requests on the proxy endpoint answered without reaching a proxy route, by status: 404 when no route matches, refusals by authentication (401, 403) and rate limits (429), CORS preflights, the output cache's hits, the request filters' answers (400, 501; 200 for OPTIONS *). The global limit's 503s are in gateway.admission.rejected.");
    }

    /// <summary>Counts a request that ended without reaching a proxy route's pipeline.</summary>
    public void NotProxied(int status)
        => _notProxied.Add(1, new KeyValuePair<string, object?>("status", (uint)status < (uint)StatusTags.Length ? StatusTags[status] : status));

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
