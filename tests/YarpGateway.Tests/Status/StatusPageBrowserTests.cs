using System.Diagnostics;
using System.Text.RegularExpressions;
using Xunit.Abstractions;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Status;

/// <summary>
/// The status page in a real headless browser (Debian's Chromium): it loads /status, runs the page's
/// script, whose live refresh redraws the figures, and the rendered DOM is read back. In CI
/// (CI=true) a missing Chromium fails the test; elsewhere it is reported.
/// </summary>
public partial class StatusPageBrowserTests(ITestOutputHelper output)
{
    private static readonly string? Chromium = Environment.GetEnvironmentVariable("PATH")!.Split(':')
        .Select(p => Path.Combine(p, "chromium")).FirstOrDefault(File.Exists);

    [GeneratedRegex("""<tr data-destination="(?<id>[^"]+)">.*?<td class="requests">(?<requests>[\d,]+)</td>""")]
    private static partial Regex RequestsCell();

    [Fact]
    public async Task TheRenderedPage_ShowsEachDestinationsRow_AndItsLiveRefreshShowsMoreTraffic_WithNoConsoleError()
    {
        if (Chromium is null)
        {
            Assert.False(string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase),
                "chromium is not installed; CI must install Debian's chromium package (.ci/run does).");
            output.WriteLine("chromium is not installed here; the status page was not rendered.");
            return;
        }

        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (a, "3"), (b, "1")));
        Assert.Equal(0, (await Load.RunAsync(gateway, requests: 40, workers: 1)).Failures);

        var first = await RenderAsync(gateway);
        Assert.Contains("Cluster c1", first.Dom, StringComparison.Ordinal);
        Assert.Equal(new Dictionary<string, int> { ["a"] = 30, ["b"] = 10 }, Requests(first.Dom));
        Assert.True(Refreshes(first.Dom) >= 2, "the page did not refresh itself");
        Assert.DoesNotContain(":CONSOLE", first.Log, StringComparison.Ordinal); // no console message, uncaught errors included

        // More traffic: the next rendering shows it.
        Assert.Equal(0, (await Load.RunAsync(gateway, requests: 40, workers: 1)).Failures);
        var second = await RenderAsync(gateway);
        Assert.Equal(new Dictionary<string, int> { ["a"] = 60, ["b"] = 20 }, Requests(second.Dom));
        Assert.Contains("<th scope=\"col\">Req/s</th>", second.Dom, StringComparison.Ordinal); // a real table with headers
        Assert.Matches("waiting in the listen queue: <b>0 of [1-9]", second.Dom); // the strip reads the kernel's queue
        Assert.Matches("memory \\(working set\\): <b>[1-9][0-9,]*\\.?[0-9]? MiB", second.Dom);
    }

    private static Dictionary<string, int> Requests(string dom)
        => RequestsCell().Matches(dom).ToDictionary(m => m.Groups["id"].Value, m => int.Parse(m.Groups["requests"].Value.Replace(",", string.Empty, StringComparison.Ordinal), System.Globalization.CultureInfo.InvariantCulture));

    private static int Refreshes(string dom)
        => Regex.Match(dom, "data-refreshed=\"(\\d+)\"") is { Success: true } m ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;

    // Loads the page, lets its script run for 5 s of the browser's virtual time (two refreshes), and returns the DOM and the browser's log.
    private static async Task<(string Dom, string Log)> RenderAsync(GatewayUnderTest gateway)
    {
        var profile = Directory.CreateTempSubdirectory("yarpgateway-chromium-");
        try
        {
            var start = new ProcessStartInfo(Chromium!)
            {
                ArgumentList =
                {
                    "--headless=new", "--no-sandbox", "--disable-gpu", $"--user-data-dir={profile.FullName}",
                    "--virtual-time-budget=5000", "--enable-logging=stderr", "--log-level=0", "--dump-dom",
                    new Uri(gateway.ManagementAddress, "/status").ToString(),
                },
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var process = Process.Start(start)!;
            var dom = process.StandardOutput.ReadToEndAsync();
            var log = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await process.WaitForExitAsync(timeout.Token);
            return (await dom, await log);
        }
        finally
        {
            profile.Delete(recursive: true);
        }
    }
}
