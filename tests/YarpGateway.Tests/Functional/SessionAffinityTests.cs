using System.Net;
using System.Text.Json.Nodes;

namespace YarpGateway.Tests.Functional;

/// <summary>YARP's session affinity policies through the gateway (HashCookie needs System.IO.Hashing, which YARP 2.3 brings).</summary>
public class SessionAffinityTests
{
    [Theory]
    [InlineData("HashCookie")]
    [InlineData("Cookie")]
    public async Task TheAffinityCookie_KeepsAClientOnOneDestination(string policy)
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (a, null), (b, null));
        config["ReverseProxy"]!["Clusters"]!["c1"]!["SessionAffinity"] = new JsonObject { ["Enabled"] = true, ["Policy"] = policy, ["AffinityKeyName"] = "aff" };
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = new HttpClient(new SocketsHttpHandler { UseCookies = false }) { BaseAddress = gateway.ProxyAddress };

        using var first = await client.GetAsync("/");
        var stuckTo = await first.Content.ReadAsStringAsync();
        var cookie = first.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("aff=", StringComparison.Ordinal)).Split(';')[0];

        var answers = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/");
            request.Headers.Add("Cookie", cookie);
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            answers.Add(await response.Content.ReadAsStringAsync());
        }

        Assert.All(answers, answer => Assert.Equal(stuckTo, answer));
        Assert.Equal(21, stuckTo == "a" ? a.Requests : b.Requests);
    }

    // Before: one line per request (an error with a seven-line stack trace for each made-up Cookie value, a warning
    // for each HashCookie value that names no destination), which any client could write by the thousand, and every
    // returning client after a restart under Cookie.
    [Theory]
    [InlineData("HashCookie", "DestinationMatchingToAffinityKeyNotFound")]
    [InlineData("Cookie", "RequestAffinityKeyDecryptionFailed")]
    public async Task AnAffinityKeyThatNamesNoDestination_IsBalancedAnew_AndLoggedOnceASecond(string policy, string yarpEvent)
    {
        await using var a = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (a, null));
        config["ReverseProxy"]!["Clusters"]!["c1"]!["SessionAffinity"] = new JsonObject { ["Enabled"] = true, ["Policy"] = policy, ["AffinityKeyName"] = "aff" };
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = new HttpClient(new SocketsHttpHandler { UseCookies = false }) { BaseAddress = gateway.ProxyAddress };

        var started = DateTime.UtcNow;
        for (var i = 0; i < 50; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/");
            request.Headers.Add("Cookie", $"aff=made-up-{i:x16}");
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Contains(response.Headers.GetValues("Set-Cookie"), c => c.StartsWith("aff=", StringComparison.Ordinal)); // a new key
        }

        var seconds = (int)Math.Ceiling((DateTime.UtcNow - started).TotalSeconds);
        var lines = gateway.Logs.Lines.Where(l => l.Contains(yarpEvent, StringComparison.Ordinal) && l.Contains("[SessionAffinityThrottled]", StringComparison.Ordinal)).ToArray();
        Assert.InRange(lines.Length, 1, seconds + 1);
        Assert.All(lines, l => Assert.StartsWith("Warning YarpGateway.SessionAffinity.SessionAffinityLogThrottle[SessionAffinityThrottled] Yarp.ReverseProxy.SessionAffinity.", l));
        Assert.DoesNotContain(lines, l => l.Contains("   at ", StringComparison.Ordinal));

        // The log never understates: the lines, the counts they carry and the last second's count, written once the kind
        // has gone quiet (LogSuppressed, within LogThrottle.QuietPeriod), add up to the 50 requests.
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (Logged(gateway, yarpEvent) < 50 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        Assert.Equal(50, Logged(gateway, yarpEvent));
    }

    private static long Logged(GatewayUnderTest gateway, string yarpEvent)
    {
        long total = 0;
        foreach (var line in gateway.Logs.Lines.Where(l => l.Contains(yarpEvent, StringComparison.Ordinal)))
        {
            if (line.Contains("[SessionAffinityThrottled]", StringComparison.Ordinal))
            {
                var more = System.Text.RegularExpressions.Regex.Match(line, @"\((\d+) more like it in the last second\.\)");
                total += 1 + long.Parse(more.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            }
            else if (line.Contains("[LogSuppressed]", StringComparison.Ordinal))
            {
                total += long.Parse(System.Text.RegularExpressions.Regex.Match(line, @"\] (\d+) more ").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return total;
    }
}
