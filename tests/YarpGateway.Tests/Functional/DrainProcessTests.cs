using System.Diagnostics;
using System.Net;

namespace YarpGateway.Tests.Functional;

/// <summary>SIGTERM against the real process: readiness, the drain delay, in-flight requests, exit code.</summary>
[Collection(TimingSensitive.Name)]
public class DrainProcessTests
{
    [Fact]
    public async Task Sigterm_ReadinessFailsAtOnce_InFlightFinish_NewRequestsServedDuringTheDelay_ExitsZero()
    {
        var drainDelay = TimeSpan.FromSeconds(2);
        var slowest = TimeSpan.FromSeconds(2);
        await using var backend = await TestBackend.StartAsync("slow");
        backend.Delay = slowest;
        var configPath = ProxyConfigJson.WriteTemp("yarpgateway-drain-", ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")));

        using var gateway = GatewayProcess.StartOnLoopback(configPath,
            "--Gateway:Shutdown:DrainDelay=00:00:02", "--Gateway:Shutdown:Timeout=00:00:10");
        var (proxy, management) = await gateway.FindEndpointsAsync();
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };

        // Steady load: each request takes 2 s at the backend.
        using var stopLoad = new CancellationTokenSource();
        var results = new System.Collections.Concurrent.ConcurrentBag<(TimeSpan Sent, HttpStatusCode? Status, string? Error)>();
        var clock = Stopwatch.StartNew();
        var load = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            while (!stopLoad.IsCancellationRequested)
            {
                var sent = clock.Elapsed;
                try
                {
                    using var response = await client.GetAsync(new Uri(proxy, "/work"));
                    results.Add((sent, response.StatusCode, null));
                }
                catch (HttpRequestException ex)
                {
                    results.Add((sent, null, ex.Message));
                }
            }
        })).ToArray();
        Assert.True(await Eventually.TrueAsync(() => backend.Held + backend.Requests >= 8, TimeSpan.FromSeconds(10)));

        var sigterm = clock.Elapsed;
        await SigtermAsync(gateway.ProcessId);

        // Like Kubernetes, stop sending new requests before the drain delay ends: after it the
        // gateway no longer accepts connections (requests already sent still finish).
        stopLoad.CancelAfter(drainDelay - TimeSpan.FromMilliseconds(500));

        // Readiness turns 503 within 200 ms.
        var readinessFailed = await Eventually.TrueAsync(async () =>
        {
            using var probe = await client.GetAsync(new Uri(management, "/healthz/ready"));
            return probe.StatusCode == HttpStatusCode.ServiceUnavailable;
        }, TimeSpan.FromSeconds(1));
        var readinessAt = clock.Elapsed - sigterm;

        // New requests while readiness is 503 but the drain delay is still on: they must be served.
        var duringDelay = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => client.GetAsync(new Uri(proxy, "/during-delay")))).WaitAsync(TimeSpan.FromSeconds(20));
        var sentDuringDelayBy = clock.Elapsed - sigterm;
        await Task.WhenAll(load).WaitAsync(TimeSpan.FromSeconds(20));
        var exitCode = await gateway.WaitForExitAsync(TimeSpan.FromSeconds(20));
        var exitedAfter = clock.Elapsed - sigterm;

        Assert.True(readinessFailed, "readiness never turned 503");
        Assert.True(readinessAt < TimeSpan.FromMilliseconds(200), $"readiness turned 503 after {readinessAt.TotalMilliseconds} ms");
        var failures = results.Where(r => r.Status != HttpStatusCode.OK).ToList();
        Assert.True(failures.Count == 0, $"{failures.Count} requests failed: " + string.Join("; ", failures.Take(3).Select(f => $"{f.Sent} {f.Status} {f.Error}")));
        Assert.All(duringDelay, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.True(sentDuringDelayBy < drainDelay + slowest, "the during-delay requests were not sent within the drain delay");
        Assert.Equal(0, exitCode);
        Assert.True(exitedAfter < drainDelay + slowest + TimeSpan.FromSeconds(1), $"exited {exitedAfter} after SIGTERM");
        Assert.Contains("Shutdown phase 1/3", gateway.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("Shutdown phase 3/3", gateway.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sigterm_KeepAliveClientsGetConnectionCloseAtOnce_AndLoseNoRequest()
    {
        var drainDelay = TimeSpan.FromSeconds(2);
        await using var backend = await TestBackend.StartAsync("fast");
        var configPath = ProxyConfigJson.WriteTemp("yarpgateway-drain-", ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")));
        using var gateway = GatewayProcess.StartOnLoopback(configPath, "--Gateway:Shutdown:DrainDelay=00:00:02", "--Gateway:Shutdown:Timeout=00:00:10");
        var (proxy, _) = await gateway.FindEndpointsAsync();

        var clock = Stopwatch.StartNew();
        var sigtermAt = TimeSpan.MaxValue;
        var noNewConnectionsAfter = TimeSpan.MaxValue; // like Kubernetes: new connections stop before the delay ends
        var stopAt = TimeSpan.MaxValue;
        var outcomes = new System.Collections.Concurrent.ConcurrentBag<(TimeSpan Sent, string Outcome)>();

        // 8 HTTP/1.1 keep-alive clients on raw sockets, back to back: an HTTP client library would
        // retry a request lost on a reused connection and hide it.
        async Task Client()
        {
            System.Net.Sockets.Socket? socket = null;
            try
            {
                while (clock.Elapsed < stopAt)
                {
                    if (socket is null)
                    {
                        if (clock.Elapsed > noNewConnectionsAfter)
                        {
                            return;
                        }

                        socket = await RawSocket.ConnectAsync(proxy);
                    }

                    var sent = clock.Elapsed;
                    var outcome = await KeepAliveExchangeAsync(socket);
                    outcomes.Add((sent, outcome));
                    if (outcome != "ok")
                    {
                        socket.Dispose();
                        socket = null;
                    }
                }
            }
            finally
            {
                socket?.Dispose();
            }
        }

        var clients = Enumerable.Range(0, 8).Select(_ => Task.Run(Client)).ToArray();
        Assert.True(await Eventually.TrueAsync(() => outcomes.Count >= 400, TimeSpan.FromSeconds(10)));
        sigtermAt = clock.Elapsed;
        noNewConnectionsAfter = sigtermAt + drainDelay - TimeSpan.FromMilliseconds(500);
        stopAt = sigtermAt + drainDelay + TimeSpan.FromSeconds(2);
        await SigtermAsync(gateway.ProcessId);
        await Task.WhenAll(clients).WaitAsync(TimeSpan.FromSeconds(20));
        var exitCode = await gateway.WaitForExitAsync(TimeSpan.FromSeconds(20));

        var lost = outcomes.Where(o => o.Outcome == "lost").ToList();
        Assert.True(lost.Count == 0, $"{lost.Count} requests lost on established connections, sent at {string.Join(", ", lost.Select(l => (l.Sent - sigtermAt).TotalMilliseconds + " ms"))} after SIGTERM");
        var firstClose = outcomes.Where(o => o.Outcome == "close").Select(o => o.Sent - sigtermAt).DefaultIfEmpty(TimeSpan.MaxValue).Min();
        Assert.True(firstClose < TimeSpan.FromSeconds(1), $"the first Connection: close came {firstClose} after SIGTERM");
        Assert.DoesNotContain(outcomes, o => o.Outcome == "ok" && o.Sent > sigtermAt + TimeSpan.FromMilliseconds(500)); // every later response closes
        Assert.Equal(0, exitCode);
    }

    // One GET on an open keep-alive connection: "ok", "close" (answered with Connection: close), or
    // "lost" (sent, then the connection ended with no complete response).
    private static async Task<string> KeepAliveExchangeAsync(System.Net.Sockets.Socket socket)
    {
        try
        {
            await socket.SendAsync("GET /x HTTP/1.1\r\nHost: gateway\r\n\r\n"u8.ToArray(), System.Net.Sockets.SocketFlags.None);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var received = new System.Text.StringBuilder();
            var buffer = new byte[4096];
            while (true)
            {
                var text = received.ToString();
                var headEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
                if (headEnd >= 0 && text.EndsWith("\r\n0\r\n\r\n", StringComparison.Ordinal))
                {
                    return text[..headEnd].Contains("\r\nConnection: close", StringComparison.OrdinalIgnoreCase) ? "close" : "ok";
                }

                var read = await socket.ReceiveAsync(buffer, System.Net.Sockets.SocketFlags.None, cts.Token);
                if (read == 0)
                {
                    return "lost";
                }

                received.Append(System.Text.Encoding.ASCII.GetString(buffer, 0, read));
            }
        }
        catch (System.Net.Sockets.SocketException)
        {
            return "lost";
        }
    }

    [Theory]
    [InlineData("second-sigterm")]
    [InlineData("timeout")]
    public async Task StuckRequest_SecondSigtermOrTheTimeout_ForcesExit(string how)
    {
        await using var backend = await TestBackend.StartAsync("stuck");
        backend.Delay = TimeSpan.FromMinutes(1);
        var configPath = ProxyConfigJson.WriteTemp("yarpgateway-drain-", ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")));
        var (drainDelay, timeout) = how == "timeout" ? ("00:00:00.500", "00:00:01") : ("00:00:30", "00:01:00");

        using var gateway = GatewayProcess.StartOnLoopback(configPath,
            $"--Gateway:Shutdown:DrainDelay={drainDelay}", $"--Gateway:Shutdown:Timeout={timeout}");
        var (proxy, _) = await gateway.FindEndpointsAsync();
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        var stuck = client.GetAsync(new Uri(proxy, "/stuck"));
        Assert.True(await Eventually.TrueAsync(() => backend.Requests == 1, TimeSpan.FromSeconds(10)));

        var clock = Stopwatch.StartNew();
        await SigtermAsync(gateway.ProcessId);
        if (how == "second-sigterm")
        {
            Assert.True(await Eventually.TrueAsync(() => gateway.StandardOutput.Contains("Shutdown phase 1/3", StringComparison.Ordinal), TimeSpan.FromSeconds(10)));
            await SigtermAsync(gateway.ProcessId);
        }

        var exitCode = await gateway.WaitForExitAsync(TimeSpan.FromSeconds(20));

        Assert.NotNull(exitCode);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed} to exit");
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => stuck); // cut off, as forced
        if (how == "second-sigterm")
        {
            Assert.Contains("Second SIGTERM: ending the drain now; aborted 1 open connections.", gateway.StandardOutput, StringComparison.Ordinal);
        }
    }

    internal static async Task SigtermAsync(int processId)
    {
        using var kill = Process.Start("kill", ["-TERM", processId.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
    }
}
