using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace YarpGateway.Tests.Functional;

/// <summary>
/// gRPC as the gateway sees it, without a gRPC library: HTTP/2 on both sides (h2c), a POST of
/// <c>application/grpc</c>, a response streamed message by message, and the status in trailers.
/// ASP.NET teams put gRPC services behind their gateway; every default (admission, retries, timeouts,
/// metrics, the WebSocket check) must let that shape through untouched.
/// </summary>
public class GrpcShapedTests
{
    [Fact]
    public async Task StreamedResponse_AndItsTrailers_ReachTheClient_MessageByMessage()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = await GrpcShapedBackend.StartAsync(release.Task);
        var config = Config(backend.Address);
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateHttp2ProxyClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));

        using var request = Call();
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal("application/grpc", response.Content.Headers.ContentType?.MediaType);
        await using var body = await response.Content.ReadAsStreamAsync(timeout.Token);

        // The first message arrives while the backend still holds the call open: nothing buffers it.
        var first = new byte[6];
        await body.ReadExactlyAsync(first, timeout.Token);
        Assert.Equal([0, 0, 0, 0, 1, 1], first);
        release.SetResult();

        var rest = new MemoryStream();
        await body.CopyToAsync(rest, timeout.Token);
        Assert.Equal([0, 0, 0, 0, 1, 2], rest.ToArray());
        Assert.Equal("0", string.Join(',', response.TrailingHeaders.GetValues("grpc-status")));
        Assert.Equal("done", string.Join(',', response.TrailingHeaders.GetValues("grpc-message")));
        Assert.Equal(1, backend.Calls);
        Assert.Equal("HTTP/2", backend.Protocol);
        Assert.Equal("trailers", backend.Te);
    }

    [Fact]
    public async Task AStreamQuietForLongerThanTheActivityTimeout_IsCut_AndCountedAndLoggedAsThatTimeout()
    {
        // A server stream with nothing to say for a while (a subscription) meets YARP's activity
        // timeout (100 s by default) once its response has started: the stream is reset. The operator
        // must be able to see why.
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = await GrpcShapedBackend.StartAsync(release.Task);
        var config = Config(backend.Address, activityTimeout: "00:00:02");
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateHttp2ProxyClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));

        using var response = await client.SendAsync(Call(), HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        await using var body = await response.Content.ReadAsStreamAsync(timeout.Token);
        await body.ReadExactlyAsync(new byte[6], timeout.Token);
        await Assert.ThrowsAnyAsync<Exception>(async () => await body.CopyToAsync(Stream.Null, timeout.Token)); // reset, not ended

        Assert.True(
            await Eventually.TrueAsync(() => gateway.Counter("gateway.proxy.timeouts|cluster=grpc|kind=activity") == 1, TimeSpan.FromSeconds(10)),
            gateway.DescribeCounters("gateway.proxy") + "\n" + string.Join("\n", gateway.Logs.Lines));
        // The line comes after the counter: wait for it.
        Assert.True(
            await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("Proxy activity timeout: route grpc, cluster grpc", StringComparison.Ordinal)
                && l.Contains("the response had started, so it was cut short", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)),
            string.Join("\n", gateway.Logs.Lines));
        Assert.Equal(0, gateway.CounterSum("gateway.proxy.errors|cluster=grpc|error=response_body")); // not a body failure
        release.SetResult();
    }

    [Fact]
    public async Task AStreamLongerThanItsRoutesTimeout_IsCut_AndCountedAndLoggedAsTheRouteTimeout()
    {
        // A route Timeout bounds the whole response, as Envoy's route timeout does, not only the wait
        // for it to start: a stream still open when it fires is reset, not ended as though complete.
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = await GrpcShapedBackend.StartAsync(release.Task);
        var config = Config(backend.Address);
        config["ReverseProxy"]!["Routes"]!["grpc"]!["Timeout"] = "00:00:02";
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateHttp2ProxyClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));

        using var response = await client.SendAsync(Call(), HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await using var body = await response.Content.ReadAsStreamAsync(timeout.Token);
        await body.ReadExactlyAsync(new byte[6], timeout.Token);
        await Assert.ThrowsAnyAsync<Exception>(async () => await body.CopyToAsync(Stream.Null, timeout.Token)); // reset, not ended
        Assert.False(timeout.IsCancellationRequested, "the stream was not cut by the route timeout");

        Assert.True(
            await Eventually.TrueAsync(() => gateway.Counter("gateway.proxy.timeouts|cluster=grpc|kind=route") == 1, TimeSpan.FromSeconds(10)),
            gateway.DescribeCounters("gateway.proxy") + "\n" + string.Join("\n", gateway.Logs.Lines));
        Assert.True(
            await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("Proxy route timeout: route grpc, cluster grpc", StringComparison.Ordinal)
                && l.Contains("the response had started, so it was cut short", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)),
            string.Join("\n", gateway.Logs.Lines));
        Assert.Equal(0, gateway.CounterSum("gateway.proxy.timeouts|cluster=grpc|kind=activity"));
        release.SetResult();
    }

    [Fact]
    public async Task AClientThatCancelsAStream_IsNotATimeout()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = await GrpcShapedBackend.StartAsync(release.Task);
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend.Address, activityTimeout: "00:00:30"));
        using var client = gateway.CreateHttp2ProxyClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));

        using (var response = await client.SendAsync(Call(), HttpCompletionOption.ResponseHeadersRead, timeout.Token))
        {
            await using var body = await response.Content.ReadAsStreamAsync(timeout.Token);
            await body.ReadExactlyAsync(new byte[6], timeout.Token);
        } // disposed mid-stream: the client resets it

        Assert.True(
            await Eventually.TrueAsync(() => gateway.CounterSum("gateway.proxy.errors|cluster=grpc|") == 1, TimeSpan.FromSeconds(10)),
            gateway.DescribeCounters("gateway.proxy"));
        Assert.Equal(0, gateway.CounterSum("gateway.proxy.timeouts|cluster=grpc|"));
        Assert.Equal(0, gateway.Counter("gateway.proxy.errors|cluster=grpc|error=response_body_destination"));
        release.SetResult();
    }

    [Fact]
    public async Task StreamsCutForBeingQuiet_DoNotEjectTheirDestination()
    {
        // A subscription quiet for longer than the activity timeout is the application's normal
        // life, not a failing destination: twelve of them cut at once must not take a destination
        // out (five consecutive failures would, one of the two at most: MaxEjectedPercent 50).
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = await GrpcShapedBackend.StartAsync(release.Task);
        var config = Config(backend.Address, activityTimeout: "00:00:02");
        config["ReverseProxy"]!["Clusters"]!["grpc"]!["Destinations"]!["d2"] = new JsonObject { ["Address"] = backend.Address.ToString() };
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateHttp2ProxyClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));

        await Task.WhenAll(Enumerable.Range(0, 12).Select(async _ =>
        {
            using var response = await client.SendAsync(Call(), HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await using var body = await response.Content.ReadAsStreamAsync(timeout.Token);
            await Assert.ThrowsAnyAsync<Exception>(async () => await body.CopyToAsync(Stream.Null, timeout.Token)); // the first message, then the reset
        }));

        Assert.True(
            await Eventually.TrueAsync(() => gateway.CounterSum("gateway.proxy.timeouts|cluster=grpc|kind=activity") == 12, TimeSpan.FromSeconds(10)),
            gateway.DescribeCounters("gateway.proxy"));
        Assert.Equal(0, gateway.CounterSum("gateway.outlier.ejections|"));
        release.SetResult();
    }

    private static JsonObject Config(Uri backend, string? activityTimeout = null)
    {
        var httpRequest = new JsonObject { ["Version"] = "2", ["VersionPolicy"] = "RequestVersionExact" };
        if (activityTimeout is not null)
        {
            httpRequest["ActivityTimeout"] = activityTimeout;
        }

        return new JsonObject
        {
            ["ReverseProxy"] = new JsonObject
            {
                ["Routes"] = new JsonObject { ["grpc"] = new JsonObject { ["ClusterId"] = "grpc", ["Match"] = new JsonObject { ["Path"] = "/{**rest}" } } },
                ["Clusters"] = new JsonObject
                {
                    ["grpc"] = new JsonObject
                    {
                        ["HttpRequest"] = httpRequest,
                        ["Destinations"] = new JsonObject { ["d"] = new JsonObject { ["Address"] = backend.ToString() } },
                    },
                },
            },
        };
    }

    private static HttpRequestMessage Call()
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/echo.Echo/Stream")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent([0, 0, 0, 0, 1, 42]),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        request.Headers.TE.ParseAdd("trailers");
        return request;
    }

    /// <summary>An h2c-only Kestrel backend that answers like a gRPC server streaming two messages.</summary>
    private sealed class GrpcShapedBackend : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private int _calls;

        private GrpcShapedBackend(WebApplication app) => _app = app;

        public Uri Address { get; private set; } = null!;

        public int Calls => Volatile.Read(ref _calls);

        public string? Protocol { get; private set; }

        public string? Te { get; private set; }

        public static async Task<GrpcShapedBackend> StartAsync(Task release)
        {
            var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
            builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http2));
            var app = builder.Build();
            var backend = new GrpcShapedBackend(app);
            app.Run(async context =>
            {
                Interlocked.Increment(ref backend._calls);
                backend.Protocol = context.Request.Protocol;
                backend.Te = context.Request.Headers.TE;
                await context.Request.Body.CopyToAsync(Stream.Null, context.RequestAborted);
                context.Response.ContentType = "application/grpc";
                context.Response.DeclareTrailer("grpc-status");
                await context.Response.Body.WriteAsync(new byte[] { 0, 0, 0, 0, 1, 1 }, context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
                await release.WaitAsync(context.RequestAborted);
                await context.Response.Body.WriteAsync(new byte[] { 0, 0, 0, 0, 1, 2 }, context.RequestAborted);
                context.Response.AppendTrailer("grpc-status", "0");
                context.Response.AppendTrailer("grpc-message", "done");
            });
            await app.StartAsync();
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            backend.Address = new Uri(address.EndsWith('/') ? address : address + "/");
            return backend;
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync(new CancellationToken(canceled: true));
            await _app.DisposeAsync();
        }
    }
}
