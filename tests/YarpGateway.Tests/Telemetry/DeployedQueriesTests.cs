using System.Net;
using System.Text.RegularExpressions;
using YarpGateway.Tests.Deploy;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Telemetry;

/// <summary>
/// The series the shipped dashboard and alert rules query are the ones the gateway exports: a renamed instrument, or a
/// counter that has no series until its first event (which <c>increase()</c> and an alert cannot see), would leave a
/// panel empty or an alert that never fires, with nothing else failing. Checked against a real process's scrape.
/// </summary>
public partial class DeployedQueriesTests
{
    /// <summary>Series that appear only with a feature the test's configuration leaves off, or with their first WebSocket.</summary>
    private static readonly Dictionary<string, string> ExportedOnlyWhen = new(StringComparer.Ordinal)
    {
        ["gateway_auth_refused_total"] = "a route with an authorization policy",
        ["aspnetcore_rate_limiting_requests_total"] = "a rate-limited route (the platform's meter)",
        ["gateway_tls_certificate_expiry_seconds"] = "an HTTPS endpoint",
        ["gateway_output_cache_lookups_total"] = "an output-cache policy",
        ["gateway_output_cache_size_bytes"] = "an output-cache policy",
        ["gateway_proxy_protocol_refused_total"] = "Gateway:ProxyProtocol:Enabled (then at 0 for every reason)",
        ["gateway_websocket_dropped_messages_total"] = "a route's first WebSocket (then at 0)",
        ["gateway_websocket_evictions_total"] = "a route's first WebSocket (then at 0 for every reason)",
    };

    // Labels the queries name that share a series' prefix.
    private static readonly string[] LabelNames = ["aspnetcore_rate_limiting_policy", "aspnetcore_rate_limiting_result"];

    [Fact]
    public async Task EverySeriesTheDashboardAndAlertsQuery_IsInTheScrape_OrAppearsWithTheFeatureItMeasures()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var configPath = ProxyConfigJson.WriteTemp("yarpgateway-queries-", ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")));
        using var gateway = GatewayProcess.StartOnLoopback(configPath);
        var (proxy, management) = await gateway.FindEndpointsAsync();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using (var response = await http.GetAsync(new Uri(proxy, "/x")))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode); // one request: the per-request histograms have series
        }

        var scrape = await http.GetStringAsync(new Uri(management, "/metrics"));
        var queried = Queried(File.ReadAllText(RepositoryFiles.PathOf("deploy/grafana/dashboard.json")))
            .Concat(Queried(File.ReadAllText(RepositoryFiles.PathOf("deploy/prometheus/alerts.yaml"))))
            .Distinct(StringComparer.Ordinal)
            .Where(name => !LabelNames.Contains(name))
            .ToArray();

        Assert.True(queried.Length > 30, $"only {queried.Length} series found in the dashboard and alerts");
        var missing = queried.Where(name => !ExportedOnlyWhen.ContainsKey(name) && !Exported(scrape, name)).ToArray();
        Assert.True(missing.Length == 0, "queried but not exported: " + string.Join(", ", missing));
        Assert.All(ExportedOnlyWhen.Keys, name => Assert.Contains(name, queried)); // an exception the queries no longer need goes
    }

    private static IEnumerable<string> Queried(string text) => SeriesName().Matches(text).Select(m => m.Value);

    // A series line, or for a histogram's name its buckets.
    private static bool Exported(string scrape, string name)
        => Regex.IsMatch(scrape, $"^{Regex.Escape(name)}(_bucket)?[{{ ]", RegexOptions.Multiline);

    [GeneratedRegex(@"\b(?:gateway|dotnet|http|kestrel|aspnetcore)_[a-z0-9_]+")]
    private static partial Regex SeriesName();
}
