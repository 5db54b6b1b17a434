using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using YarpGateway.Admission;

namespace YarpGateway.Tests.Functional;

/// <summary>Requests still receiving their bodies hold at most their share of the global limit's slots (Gateway:Admission:UploadShare).</summary>
public class UploadShareTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    // A queue long enough that a request which found the global limit full would wait past every bound here.
    private static readonly string[] SmallGlobal = ["--Gateway:Admission:Global:MaxConcurrency=8", "--Gateway:Admission:Global:MaxQueue=100", "--Gateway:Admission:Global:QueueTimeout=00:01:00"];

    private static readonly byte[] SlowUploadHead = Encoding.ASCII.GetBytes("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n0123456789");

    // Tried on the Release build with the shipped defaults: 4,200 connections each sending a 10 MB body at 300 bytes a
    // second (Kestrel's minimum rate is 240) held every one of the 4,096 global slots; every other request on the gateway
    // waited its 5 s in the queue and got 503, while nginx in front of the same backend answered each at once.
    [Fact]
    public async Task SlowUploads_HoldTheirShare_AndEveryOtherRequestIsServed()
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)), SmallGlobal);
        using var client = gateway.CreateProxyClient();

        // Eight slow uploads, as many as the global limit: half are let through, the others refused at once.
        var uploads = new List<Socket>();
        try
        {
            for (var i = 0; i < 8; i++)
            {
                var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);
                uploads.Add(socket);
                await socket.SendAsync(SlowUploadHead);
            }

            var limits = gateway.Services.GetRequiredService<AdmissionLimits>();
            Assert.True(await Eventually.TrueAsync(() => gateway.Counter("gateway.admission.rejected|limit=upload_share|name=global|reason=queue_full") == 4 && limits.UploadShare?.InUse == 4, Bound),
                gateway.DescribeCounters("gateway.admission"));

            // A GET, and a POST whose whole body comes with its head, take none of the share: answered at once.
            Assert.Equal("b", await client.GetStringAsync("/x").WaitAsync(Bound));
            using (var post = await client.PostAsync("/api", new StringContent("{\"a\":1}", Encoding.UTF8, "application/json")).WaitAsync(Bound))
            {
                Assert.Equal(HttpStatusCode.OK, post.StatusCode);
            }

            Assert.Equal(4, limits.UploadShare!.InUse);
            // Logged just after the refusal is counted: a fresh-clone run under load once read the log between the two.
            Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("[UploadShareFull] 4 requests are still receiving their bodies from their clients, the uploads' share of the global limit (Gateway:Admission:UploadShare 0.5)", StringComparison.Ordinal)), Bound),
                "no UploadShareFull line: " + string.Join(" | ", gateway.Logs.Lines.Where(l => l.Contains("UploadShare", StringComparison.Ordinal))));

            // The refused four were answered 503 with Retry-After, without waiting for their bodies. (Counted as refused a
            // moment before the answer reaches their sockets: a test run under load once read three of them here.)
            Assert.True(await Eventually.TrueAsync(() => uploads.Count(s => s.Available > 0) == 4, Bound), $"{uploads.Count(s => s.Available > 0)} answered");
            var refused = 0;
            foreach (var socket in uploads)
            {
                if (socket.Available > 0)
                {
                    var head = await RawSocket.ReceiveResponseHeadAsync(socket);
                    Assert.StartsWith("HTTP/1.1 503", head, StringComparison.Ordinal);
                    Assert.Contains("Retry-After: 1", head, StringComparison.OrdinalIgnoreCase);
                    refused++;
                }
            }

            Assert.Equal(4, refused);
        }
        finally
        {
            foreach (var socket in uploads)
            {
                socket.Dispose();
            }
        }

        // Their clients gone, the uploads give their slots back.
        var share = gateway.Services.GetRequiredService<AdmissionLimits>().UploadShare!;
        Assert.True(await Eventually.TrueAsync(() => share.InUse == 0, Bound), $"in use: {share.InUse}");
    }

    [Fact]
    public async Task AnUploadGivesItsSlotOfTheShareBack_WhenItsResponseStarts()
    {
        // An HTTP/2 backend that answers before it reads the body (an echo, a stream's first message; over HTTP/1.1,
        // SocketsHttpHandler holds a response back until the body is sent): once the response has started, the upload is
        // a conversation, not a client holding a slot with a body.
        await using var backend = await StartHttp2BackendAsync(async context =>
        {
            await context.Response.WriteAsync("first", context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
            await context.Request.Body.CopyToAsync(Stream.Null, context.RequestAborted);
        });
        var config = RoutedOverHttp2(backend);
        await using var gateway = await GatewayUnderTest.StartAsync(config, SmallGlobal);
        var share = gateway.Services.GetRequiredService<AdmissionLimits>().UploadShare!;
        var traffic = gateway.Services.GetRequiredService<YarpGateway.Endpoints.TrafficCounters>();

        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        var head = await RawSocket.ExchangeAsync(socket, SlowUploadHead);

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.True(await Eventually.TrueAsync(() => share.InUse == 0, Bound), $"in use: {share.InUse}");
        Assert.Equal(1, traffic.InFlightRequests); // still running, its body still to come
    }

    [Fact]
    public async Task OverHttp2_ASlowBodyAndAGrpcClientStreamCount_AWholeBodyDoesNot()
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)), SmallGlobal);
        var share = gateway.Services.GetRequiredService<AdmissionLimits>().UploadShare!;
        using var client = gateway.CreateHttp2ProxyClient();
        var rest = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var slow = client.PostAsync("/upload", new HeldBackContent(rest.Task, "application/octet-stream"));
        Assert.True(await Eventually.TrueAsync(() => share.InUse == 1, Bound), $"in use: {share.InUse}");

        using (var whole = await client.PostAsync("/api", new StringContent("{\"a\":1}", Encoding.UTF8, "application/json")).WaitAsync(Bound))
        {
            Assert.Equal(HttpStatusCode.OK, whole.StatusCode);
        }

        // A gRPC client stream that sends a few bytes and then waits: it counts as an upload does (to an HTTP/2 backend, YARP
        // lifts Kestrel's minimum data rate for it, so it could wait for minutes).
        var stream = client.PostAsync("/echo.Echo/Stream", new HeldBackContent(rest.Task, "application/grpc"));
        Assert.True(await Eventually.TrueAsync(() => share.InUse == 2, Bound), $"in use: {share.InUse}");

        rest.SetResult();
        using (var done = await slow.WaitAsync(Bound))
        {
            Assert.Equal(HttpStatusCode.OK, done.StatusCode);
        }

        using (var streamed = await stream.WaitAsync(Bound))
        {
            Assert.Equal(HttpStatusCode.OK, streamed.StatusCode);
        }

        Assert.True(await Eventually.TrueAsync(() => share.InUse == 0, Bound), $"in use: {share.InUse}");
        Assert.Equal(0, gateway.CounterSum("gateway.admission.rejected|limit=upload_share"));
    }

    /// <summary>
    /// YARP lifts Kestrel's body size limit and minimum data rate for a gRPC call it sends to an HTTP/2 backend, once it
    /// starts sending the body. The share's look at the body comes first; over HTTP/2 it must leave both for YARP to lift: a
    /// client stream that outgrows Kestrel's limit (1,000 bytes here), or that says nothing for longer than the rate's 5 s
    /// grace, goes on. The 7 s of silence is the scenario, not a synchronisation.
    /// </summary>
    [Theory]
    [InlineData(5000, 0)]
    [InlineData(10, 7)]
    public async Task AGrpcClientStream_LargerThanKestrelsBodyLimit_OrQuietPastItsGrace_IsNotCut(int restBytes, int quietSeconds)
    {
        await using var backend = await StartHttp2BackendAsync(async context =>
        {
            context.Features.Get<Microsoft.AspNetCore.Server.Kestrel.Core.Features.IHttpMinRequestBodyDataRateFeature>()!.MinDataRate = null; // as a gRPC server does for a client stream
            var length = 0L;
            var buffer = new byte[1024];
            for (int read; (read = await context.Request.Body.ReadAsync(buffer, context.RequestAborted)) > 0;)
            {
                length += read;
            }

            await context.Response.WriteAsync(length.ToString(System.Globalization.CultureInfo.InvariantCulture), context.RequestAborted);
        });
        var config = RoutedOverHttp2(backend);
        config["Kestrel"] = JsonNode.Parse("""{ "Limits": { "MaxRequestBodySize": 1000 } }""");
        await using var gateway = await GatewayUnderTest.StartAsync(config, SmallGlobal);
        var share = gateway.Services.GetRequiredService<AdmissionLimits>().UploadShare!;
        using var client = gateway.CreateHttp2ProxyClient();
        var rest = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var stream = client.PostAsync("/echo.Echo/Stream", new HeldBackContent(rest.Task, "application/grpc", restBytes));
        Assert.True(await Eventually.TrueAsync(() => share.InUse == 1, Bound), $"in use: {share.InUse}"); // looked at, and counted
        await Task.Delay(TimeSpan.FromSeconds(quietSeconds));
        rest.SetResult();

        using var response = await stream.WaitAsync(Bound);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal((10 + restBytes).ToString(System.Globalization.CultureInfo.InvariantCulture), await response.Content.ReadAsStringAsync());
    }

    /// <summary>A Kestrel backend on a loopback port that speaks HTTP/2 only (prior knowledge), answering with <paramref name="handler"/>.</summary>
    private static async Task<WebApplication> StartHttp2BackendAsync(RequestDelegate handler)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http2));
        var backend = builder.Build();
        backend.Run(handler);
        await backend.StartAsync();
        return backend;
    }

    /// <summary>A catch-all route to <paramref name="backend"/>, reached over HTTP/2 without TLS.</summary>
    private static JsonObject RoutedOverHttp2(WebApplication backend)
    {
        var address = backend.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.First();
        var config = ProxyConfigJson.CatchAll(new Uri(address + "/"));
        config["ReverseProxy"]!["Clusters"]!["c1"]!["HttpRequest"] = new JsonObject { ["Version"] = "2", ["VersionPolicy"] = "RequestVersionExact" };
        return config;
    }

    /// <summary>A body of unknown length whose first bytes are sent at once and the rest once <c>rest</c> completes.</summary>
    private sealed class HeldBackContent : HttpContent
    {
        private readonly Task _rest;
        private readonly int _restBytes;

        public HeldBackContent(Task rest, string contentType, int restBytes = 10)
        {
            _rest = rest;
            _restBytes = restBytes;
            Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
        }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.WriteAsync(new byte[10]);
            await stream.FlushAsync();
            await _rest;
            await stream.WriteAsync(new byte[_restBytes]);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }

    [Fact]
    public async Task One_TurnsTheShareOff()
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)), [.. SmallGlobal, "--Gateway:Admission:UploadShare=1"]);

        Assert.Null(gateway.Services.GetRequiredService<AdmissionLimits>().UploadShare);
        Assert.DoesNotContain(gateway.Services.GetRequiredService<AdmissionLimits>().All(), l => l.Kind == AdmissionLimits.UploadShareKind);
    }
}
