using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using YarpGateway.RequestFiltering;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Hostile;

/// <summary>
/// A body whose <c>Content-Length</c> is over the limit gets 413 from the gateway. Most clients write the whole body
/// before they read: the gateway reads it and throws it away after the 413, for a bounded time, so that the
/// connection's close does not reset the answer away (as nginx's lingering close does).
/// </summary>
public class OversizedBodyTests
{
    private const int Limit = 1000;

    [Fact]
    public async Task AClientThatWritesTheWholeBodyFirst_Gets413_NotABrokenPipe()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(LimitedRoute(backend));
        using var client = gateway.CreateProxyClient();

        // HttpClient sends no Expect and reads only once the body is written, as Python's requests does.
        // 32 MB is more than loopback's socket buffers hold: a connection closed on it unread is reset.
        using var response = await client.PostAsync("/up", new ByteArrayContent(new byte[32 * 1024 * 1024]));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal(0, backend.Requests);
    }

    [Theory]
    [InlineData("/elsewhere", HttpStatusCode.NotFound, false)] // no route
    [InlineData("/api/orders", HttpStatusCode.Unauthorized, false)] // refused by the route's authorization, before the proxy
    [InlineData("/elsewhere", HttpStatusCode.NotFound, true)] // the same, chunked
    [InlineData("/api/orders", HttpStatusCode.Unauthorized, true)]
    public async Task ABodyOverTheDefaultLimit_RefusedBeforeTheProxy_GetsItsAnswer_NotABrokenPipe(string path, HttpStatusCode expected, bool chunked)
    {
        // Kestrel reads an unread body after the answer, but not one over the limit (30,000,000 bytes by default).
        await using var backend = await TestBackend.StartAsync("a");
        var tokens = new Security.TestTokens();
        var config = ProxyConfigJson.Config([("api", "/api/{**rest}", "c")], [("c", "RoundRobin", [(backend, null)])]);
        config["ReverseProxy"]!["Routes"]!["api"]!["AuthorizationPolicy"] = "Default";
        config["Authentication"] = tokens.Section();
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        if (chunked)
        {
            // HttpClient reads the answer while it sends a chunked body; Python's requests, with a generator, does not:
            // every byte is written first. 64 MiB leaves far more than the socket buffers hold past the 30 MB limit.
            using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);
            await socket.SendAsync(Encoding.ASCII.GetBytes($"POST {path} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"));
            var chunk = Encoding.ASCII.GetBytes("10000\r\n").Concat(new byte[0x10000]).Concat("\r\n"u8.ToArray()).ToArray();
            for (var i = 0; i < 1024; i++)
            {
                await socket.SendAsync(chunk); // 64 MiB in all, every byte written before anything is read
            }

            await socket.SendAsync("0\r\n\r\n"u8.ToArray());
            var head = await RawSocket.ReceiveResponseHeadAsync(socket);
            Assert.StartsWith($"HTTP/1.1 {(int)expected} ", head, StringComparison.Ordinal);
        }
        else
        {
            using var response = await client.PostAsync(path, new ByteArrayContent(new byte[32 * 1024 * 1024]));
            Assert.Equal(expected, response.StatusCode);
        }

        Assert.Equal(0, backend.Requests);
    }

    [Fact]
    public async Task ASlowClientsBodyUnderTheLimit_RefusedBeforeItWasRead_IsReadPastKestrelsDrainTimeout_AndTheClientGetsTheAnswer()
    {
        // An upload on a slow link, to a route whose token has expired: Kestrel alone reads the refused body for
        // 5 s, then closes, and the rest of the upload meets a reset that takes the 401 with it.
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.Config([("api", "/api/{**rest}", "c")], [("c", "RoundRobin", [(backend, null)])]);
        config["ReverseProxy"]!["Routes"]!["api"]!["AuthorizationPolicy"] = "Default";
        config["Authentication"] = new Security.TestTokens().Section();
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);

        // 10 KB every 100 ms for 9 s: a slow link (100 KB/s), but far above Kestrel's MinRequestBodyDataRate. Kestrel's
        // drain ends on its once-a-second heartbeat after 5 s (6.7 s, tried with Python), hence 9.
        // A pause would not do: Kestrel times only the reads that wait, and ends a body that pauses past its grace.
        var chunk = new byte[10_000];
        await socket.SendAsync(Encoding.ASCII.GetBytes($"POST /api/photos HTTP/1.1\r\nHost: a\r\nContent-Length: {90 * chunk.Length}\r\n\r\n"));
        using var pace = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        for (var i = 0; i < 90; i++)
        {
            await socket.SendAsync(chunk);
            await pace.WaitForNextTickAsync();
        }

        socket.Shutdown(SocketShutdown.Send);
        var answer = Encoding.ASCII.GetString(await RawSocket.ReceiveUntilClosedAsync(socket));

        Assert.StartsWith("HTTP/1.1 401 ", answer, StringComparison.Ordinal);
        Assert.Equal(0, backend.Requests);
    }

    [Fact]
    public async Task DuringTheShutdownsDrainDelay_ARefusedUploadStillGetsItsAnswer()
    {
        // SIGTERM's first phase keeps serving for the drain delay while Kubernetes takes the pod out of its endpoints:
        // the refused body was not read then (the drain ended with the stopping token), and every such upload met a
        // reset (3 of 3 at 40 MB, tried with SIGTERM). It is read as any request in flight is served.
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(LimitedRoute(backend), "--Gateway:Shutdown:DrainDelay=00:00:10");
        using var client = gateway.CreateProxyClient();

        var lifetime = gateway.Services.GetRequiredService<IHostApplicationLifetime>();
        lifetime.StopApplication(); // what SIGTERM does: the stopping token first, then the host's stop with its delay
        using var response = await client.PostAsync("/up", new ByteArrayContent(new byte[32 * 1024 * 1024]));

        Assert.True(lifetime.ApplicationStopping.IsCancellationRequested);
        Assert.False(lifetime.ApplicationStopped.IsCancellationRequested); // still in the delay
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }

    [Fact]
    public async Task AClientWaitingFor100Continue_Gets413_AndNo100_AndTheConnectionCloses()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(LimitedRoute(backend));
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);

        await socket.SendAsync(Encoding.ASCII.GetBytes("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000\r\nExpect: 100-continue\r\n\r\n"));
        var started = System.Diagnostics.Stopwatch.StartNew();
        var answer = Encoding.ASCII.GetString(await RawSocket.ReceiveUntilClosedAsync(socket));

        // Closed with the answer: a gateway that waited for the body would hold the connection until Kestrel's
        // MinRequestBodyDataRate gave up on it, after its 5 s grace.
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(4), $"closed after {started.Elapsed}");
        Assert.StartsWith("HTTP/1.1 413 ", answer, StringComparison.Ordinal);
        Assert.DoesNotContain("100 Continue", answer, StringComparison.Ordinal);
        Assert.Contains("Connection: close", answer, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task TheRefusedBody_IsReadOnlyForTheDrainTime_ThenTheConnectionCloses()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(
            LimitedRoute(backend),
            services => services.AddSingleton(new RefusedBodyDrain(time)));
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        await socket.SendAsync(Encoding.ASCII.GetBytes("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000\r\n\r\n"));

        long sent = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var writer = Task.Run(async () =>
        {
            var chunk = new byte[64 * 1024];
            try
            {
                while (true)
                {
                    Interlocked.Add(ref sent, await socket.SendAsync(chunk, SocketFlags.None, stop.Token));
                }
            }
            catch (SocketException)
            {
                return true; // the gateway closed the connection
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        });

        var head = await RawSocket.ReceiveResponseHeadAsync(socket);
        Assert.StartsWith("HTTP/1.1 413 ", head, StringComparison.Ordinal);

        // Still read after the 413: far more than any socket buffer goes through.
        Assert.True(await Eventually.TrueAsync(() => Interlocked.Read(ref sent) > 64L * 1024 * 1024, TimeSpan.FromSeconds(10)), $"sent {Interlocked.Read(ref sent)} bytes");
        Assert.False(writer.IsCompleted);

        time.Advance(RefusedBodyDrain.DrainTime);
        var finished = await Task.WhenAny(writer, Task.Delay(TimeSpan.FromSeconds(10)));
        Assert.Same(writer, finished);
        Assert.True(await writer, "the connection was still open when the writer gave up");
        Assert.Equal(0, backend.Requests);
    }

    private static System.Text.Json.Nodes.JsonNode LimitedRoute(TestBackend backend)
    {
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]!["MaxRequestBodySize"] = Limit;
        return config;
    }
}
