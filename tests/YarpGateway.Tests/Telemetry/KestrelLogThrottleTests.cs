using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Telemetry;

public class KestrelLogThrottleTests
{
    /// <summary>A fault in the pipeline that throws for one path, as a bug would.</summary>
    private sealed class Fault : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((context, nextMiddleware) => context.Request.Path == "/boom" ? throw new InvalidOperationException("boom") : nextMiddleware(context));
            next(app);
        };
    }

    // Before: one error with its stack trace per request (tried: two routes that routing found ambiguous, each
    // request to them a 500 and some thirty lines of log).
    [Fact]
    public async Task AnExceptionThatEscapesThePipeline_IsLoggedOnceASecond_WithItsStackTrace()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)), services => services.AddSingleton<IStartupFilter, Fault>());
        using var client = gateway.CreateProxyClient();

        var started = DateTime.UtcNow;
        for (var i = 0; i < 50; i++)
        {
            using var response = await client.GetAsync("/boom");
            Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        }

        var seconds = (int)Math.Ceiling((DateTime.UtcNow - started).TotalSeconds);
        var lines = gateway.Logs.Lines.Where(l => l.Contains("ApplicationError", StringComparison.Ordinal) && l.Contains("[KestrelThrottled]", StringComparison.Ordinal)).ToArray();
        Assert.InRange(lines.Length, 1, seconds + 1);
        Assert.Contains(lines, l => l.Contains("System.InvalidOperationException: boom", StringComparison.Ordinal) && l.Contains("   at ", StringComparison.Ordinal));
        Assert.Equal("a", await client.GetStringAsync("/x")); // the rest serves
    }

    // Before: nothing was logged for a request Kestrel refused (its event is Debug): with MaxRequestHeadersTotalSize too
    // low, every probe got 431 and the pod was never ready, without a word in its log.
    [Fact]
    public async Task ARequestKestrelRefusesOverALimit_IsLoggedOnceASecond_NamingTheLimit()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)), "--Kestrel:Limits:MaxRequestHeadersTotalSize=600");
        using var client = gateway.CreateProxyClient();
        Assert.Equal("a", await client.GetStringAsync("/x"));
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("[KestrelThrottled]", StringComparison.Ordinal));

        var started = DateTime.UtcNow;
        for (var i = 0; i < 20; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/x") { Headers = { { "Cookie", "session=" + new string('x', 700) } } };
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, response.StatusCode);
        }

        var seconds = (int)Math.Ceiling((DateTime.UtcNow - started).TotalSeconds);
        var lines = gateway.Logs.Lines.Where(l => l.Contains("[KestrelThrottled]", StringComparison.Ordinal)).ToArray();
        Assert.InRange(lines.Length, 1, seconds + 1);
        Assert.All(lines, l => Assert.StartsWith(
            "Information YarpGateway.Telemetry.KestrelLogThrottle[KestrelThrottled] Microsoft.AspNetCore.Server.Kestrel.BadRequests[ConnectionBadRequest]: Connection id ", l));
        Assert.Contains(lines, l => l.Contains("bad request data: \"Request headers too long.\" Refused by Kestrel before the gateway saw it: over Kestrel:Limits:MaxRequestHeadersTotalSize", StringComparison.Ordinal));
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("Microsoft.AspNetCore.Server.Kestrel", StringComparison.Ordinal) && l.StartsWith("Debug", StringComparison.Ordinal));
        Assert.Equal("a", await client.GetStringAsync("/x"));
    }

    // Before: an HTTP/2 connection Kestrel closed for a header over Http2:MaxRequestHeaderFieldSize was logged nowhere (its
    // event is Debug), as was one over the HTTP/1.1 limits before the test above.
    [Fact]
    public async Task AnHttp2HeaderOverItsLimit_ClosesTheConnection_AndIsLoggedNamingTheLimit()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)), "--Kestrel:Limits:Http2:MaxRequestHeaderFieldSize=600");
        using var client = gateway.CreateProxyClient();
        HttpRequestMessage H2(string? header) => new(HttpMethod.Get, "/x")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Headers = { { "X-Long", header ?? "short" } },
        };

        using (var ordinary = await client.SendAsync(H2(null)))
        {
            Assert.Equal(HttpStatusCode.OK, ordinary.StatusCode);
        }

        await Assert.ThrowsAsync<HttpRequestException>(() => client.SendAsync(H2(new string('x', 1000)))); // .NET's client sends it as is: 1,000 bytes

        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("[KestrelThrottled]", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)));
        var line = Assert.Single(gateway.Logs.Lines, l => l.Contains("[KestrelThrottled]", StringComparison.Ordinal));
        Assert.StartsWith("Information YarpGateway.Telemetry.KestrelLogThrottle[KestrelThrottled] Microsoft.AspNetCore.Server.Kestrel.Http2[HPackDecodingError]: Connection id ", line);
        Assert.Contains("over Kestrel:Limits:Http2:MaxRequestHeaderFieldSize", line, StringComparison.Ordinal);
        using var after = await client.SendAsync(H2(null));
        Assert.Equal(HttpStatusCode.OK, after.StatusCode); // the next connection is served
    }
}
