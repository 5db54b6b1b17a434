using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Xunit.Abstractions;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Status;

/// <summary>
/// The status page in a real headless browser, driven by Playwright with Debian's Chromium (no browser download):
/// it loads /status, runs the page's script, and the test waits on the rendered page itself: for its live refresh,
/// and for the new traffic to show without a reload. Every console message and uncaught error is collected. In CI
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

        // Playwright bounds what a page waits for (the timeouts below), not its driver's start, the browser's close, or a
        // call the browser never answers (NewPageAsync, EvaluateAsync, ContentAsync, CountAsync have no timeout of their
        // own): each is bounded here, so that a browser that stops answering fails this test in a minute or two instead
        // of holding the run until CI's hang limit (where, once nothing live can complete the awaited task, the dump shows
        // nothing of the test: its frames are garbage).
        using var playwright = await Playwright.CreateAsync().WaitAsync(TimeSpan.FromSeconds(60));
        var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu"],
            Timeout = 30_000,
        }).WaitAsync(TimeSpan.FromSeconds(60));
        try
        {
            await RenderAsync(browser, gateway).WaitAsync(TimeSpan.FromSeconds(90));
            await SlowLinkAsync(browser, gateway).WaitAsync(TimeSpan.FromSeconds(90));
        }
        finally
        {
            await browser.CloseAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
    }

    private static async Task RenderAsync(IBrowser browser, GatewayUnderTest gateway)
    {
        var page = await browser.NewPageAsync();
        page.SetDefaultTimeout(20_000); // every wait below is bounded
        var problems = new System.Collections.Concurrent.ConcurrentQueue<string>();
        page.Console += (_, message) => problems.Enqueue($"console {message.Type}: {message.Text} ({message.Location})");
        page.PageError += (_, error) => problems.Enqueue($"uncaught: {error}");

        var response = await page.GotoAsync(new Uri(gateway.ManagementAddress, "/status").ToString());
        Assert.Equal(200, response!.Status);

        // The page's script has drawn the figures and refreshed them at least twice.
        await page.WaitForFunctionAsync("() => Number(document.querySelector('[data-refreshed]')?.getAttribute('data-refreshed')) >= 2");
        var first = await page.ContentAsync();
        Assert.Contains("Cluster c1", first, StringComparison.Ordinal);
        Assert.Equal(new Dictionary<string, int> { ["a"] = 30, ["b"] = 10 }, Requests(first));

        // More traffic: the live refresh shows it, without a reload.
        Assert.Equal(0, (await Load.RunAsync(gateway, requests: 40, workers: 1)).Failures);
        await page.WaitForFunctionAsync("() => document.querySelector('tr[data-destination=\"a\"] td.requests')?.textContent === '60'");
        var second = await page.ContentAsync();
        Assert.Equal(new Dictionary<string, int> { ["a"] = 60, ["b"] = 20 }, Requests(second));
        Assert.Equal(1, await page.Locator("th[scope=col]", new PageLocatorOptions { HasTextString = "Req/s" }).CountAsync()); // a real table with headers
        Assert.Matches("waiting in the listen queue: <b>0 of [1-9]", second); // the strip reads the kernel's queue
        Assert.Matches("memory \\(working set\\): <b>[1-9][0-9,]*\\.?[0-9]? MiB", second);

        // A refresh updates the rows in place: the row drawn before is the row shown two refreshes later (rebuilding every
        // table took the browser seconds per refresh with 3,000 clusters).
        await page.EvaluateAsync("() => { document.querySelector('tr[data-destination=\"a\"]').kept = true; }");
        var refreshed = await page.EvaluateAsync<int>("() => Number(document.body.dataset.refreshed)");
        await page.WaitForFunctionAsync($"() => Number(document.body.dataset.refreshed) >= {refreshed + 2}");
        Assert.True(await page.EvaluateAsync<bool>("() => document.querySelector('tr[data-destination=\"a\"]').kept === true"), "the destination's row was drawn again instead of updated");
        Assert.True(problems.IsEmpty, string.Join("\n", problems));
    }

    /// <summary>
    /// Over a link slower than the page's 2 s period (a port-forward, a VPN), the next read starts only once the last one has
    /// ended: with a timer every 2 s, reads that take longer piled up, each costing the gateway a whole /status.json.
    /// </summary>
    private static async Task SlowLinkAsync(IBrowser browser, GatewayUnderTest gateway)
    {
        var page = await browser.NewPageAsync();
        page.SetDefaultTimeout(30_000);
        int inFlight = 0, most = 0;
        await page.RouteAsync("**/status.json", async route =>
        {
            var now = Interlocked.Increment(ref inFlight);
            HighWaterMark.Raise(ref most, now);
            try
            {
                var response = await route.FetchAsync();
                await Task.Delay(TimeSpan.FromSeconds(2.5)); // the slow link, longer than the page's period
                await route.FulfillAsync(new RouteFulfillOptions { Response = response });
            }
            finally
            {
                Interlocked.Decrement(ref inFlight);
            }
        });

        await page.GotoAsync(new Uri(gateway.ManagementAddress, "/status").ToString());
        await page.WaitForFunctionAsync("() => Number(document.body.dataset.refreshed) >= 2");
        Assert.Equal(1, Volatile.Read(ref most));
    }

    private static Dictionary<string, int> Requests(string dom)
        => RequestsCell().Matches(dom).ToDictionary(m => m.Groups["id"].Value, m => int.Parse(m.Groups["requests"].Value.Replace(",", string.Empty, StringComparison.Ordinal), System.Globalization.CultureInfo.InvariantCulture));
}
