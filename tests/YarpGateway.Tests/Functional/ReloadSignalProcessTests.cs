using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace YarpGateway.Tests.Functional;

/// <summary>
/// SIGHUP against the real process. It used to end it at once (the runtime's default for the
/// signal): no drain, every connection dropped, nothing logged. An operator coming from nginx sends it
/// to reload.
/// </summary>
[Collection(TimingSensitive.Name)]
public class ReloadSignalProcessTests
{
    [Fact]
    public async Task Sighup_KeepsServingOnTheSameConnection_AndSaysWhatCameOfIt()
    {
        await using var backend = await TestBackend.StartAsync("b");
        var configPath = ProxyConfigJson.WriteTemp("yarpgateway-sighup-", ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")));
        using var gateway = GatewayProcess.StartOnLoopback(configPath);
        var (proxy, _) = await gateway.FindEndpointsAsync();

        var connects = 0;
        using var client = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (context, cancellationToken) =>
            {
                Interlocked.Increment(ref connects);
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            },
        })
        { Timeout = TimeSpan.FromSeconds(10) };
        using (var first = await client.GetAsync(new Uri(proxy, "/before")))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        await SignalAsync(gateway.ProcessId);
        Assert.True(await Eventually.TrueAsync(() => gateway.StandardOutput.Contains("SIGHUP: read", StringComparison.Ordinal), TimeSpan.FromSeconds(10)),
            "no SIGHUP line" + SighupIgnoredHere() + ": " + gateway.StandardOutput + gateway.StandardError);

        using (var second = await client.GetAsync(new Uri(proxy, "/after")))
        {
            Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        }

        Assert.Equal(1, Volatile.Read(ref connects)); // the keep-alive connection outlived the signal
        Assert.Contains(configPath, gateway.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("the routes and clusters are unchanged; revision 1 keeps serving.", gateway.StandardOutput, StringComparison.Ordinal);

        // A broken edit: the signal's line says it is rejected and why, and the last good configuration serves.
        File.WriteAllText(configPath, "{ broken");
        Assert.True(await Eventually.TrueAsync(() => gateway.StandardOutput.Contains("reload rejected", StringComparison.Ordinal), TimeSpan.FromSeconds(20)),
            "the broken edit was not rejected: " + gateway.StandardOutput);
        await SignalAsync(gateway.ProcessId);
        Assert.True(await Eventually.TrueAsync(() => gateway.StandardOutput.Contains("the proxy configuration is rejected and revision 1 keeps serving", StringComparison.Ordinal), TimeSpan.FromSeconds(10)),
            "no SIGHUP line for the rejected file: " + gateway.StandardOutput);
        using (var third = await client.GetAsync(new Uri(proxy, "/still")))
        {
            Assert.Equal(HttpStatusCode.OK, third.StatusCode);
        }

        File.Delete(configPath);
    }

    [Theory]
    [InlineData("USR1")]
    [InlineData("USR2")]
    public async Task UserSignals_AreLoggedAndIgnored_TheProcessKeepsServing(string signal)
    {
        // nginx and Envoy reopen their logs on SIGUSR1 (logrotate sends it); HAProxy stops gracefully.
        // The runtime's default ended the gateway at once.
        await using var backend = await TestBackend.StartAsync("b");
        var configPath = ProxyConfigJson.WriteTemp("yarpgateway-sigusr-", ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")));
        using var gateway = GatewayProcess.StartOnLoopback(configPath);
        var (proxy, _) = await gateway.FindEndpointsAsync();
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };

        await SignalAsync(gateway.ProcessId, signal);
        Assert.True(await Eventually.TrueAsync(() => gateway.StandardOutput.Contains($"SIG{signal} received and ignored", StringComparison.Ordinal), TimeSpan.FromSeconds(10)),
            "no line for the signal: " + gateway.StandardOutput + gateway.StandardError);
        using var response = await client.GetAsync(new Uri(proxy, "/after"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        File.Delete(configPath);
    }

    [Theory]
    [InlineData(1, "SIGHUP: read")] // answered with a reload once started
    [InlineData(10, "SIGUSR1 received and ignored")]
    public async Task ASignalWhileStarting_DoesNotEndTheProcess_AndIsAnsweredOnceStarted(int signal, string answer)
    {
        await using var backend = await TestBackend.StartAsync("b");
        // 3,000 routes more: reading them keeps the gateway starting for about a second after its first line.
        var config = ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1"));
        var routes = config["ReverseProxy"]!["Routes"]!.AsObject();
        for (var i = 0; i < 3000; i++)
        {
            routes[$"r{i}"] = new System.Text.Json.Nodes.JsonObject { ["ClusterId"] = "c1", ["Match"] = new System.Text.Json.Nodes.JsonObject { ["Path"] = $"/r{i}/{{**rest}}" } };
        }

        var configPath = ProxyConfigJson.WriteTemp("yarpgateway-early-sighup-", config);
        using var gateway = GatewayProcess.StartOnLoopback(configPath);

        // The first line is written while the gateway is composed, before it starts: a SIGHUP then used to end the
        // process (code 129) every time, before it ever listened. Watched for without a pause, and signalled
        // without starting a process, so that the signal lands while the gateway is still starting.
        var watch = Stopwatch.StartNew();
        while (gateway.StandardOutput.Length == 0 && watch.Elapsed < TimeSpan.FromSeconds(30))
        {
            Thread.SpinWait(1000);
        }

        Assert.Equal(0, Kill(gateway.ProcessId, signal));

        var (proxy, _) = await gateway.FindEndpointsAsync();
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var response = await client.GetAsync(new Uri(proxy, "/after"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(await Eventually.TrueAsync(() => gateway.StandardOutput.Contains(answer, StringComparison.Ordinal), TimeSpan.FromSeconds(30)),
            "the signal was not answered once started" + SighupIgnoredHere() + ": " + gateway.StandardOutput);
        File.Delete(configPath);
    }

    // A process started under nohup ignores SIGHUP, and so do its children: the runtime keeps a signal that was
    // ignored when the process started ignored, whatever is registered for it (seen: CI run with `nohup .ci/run`).
    private static string SighupIgnoredHere()
        => File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal)) is { } line
            && (Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16) & 1) != 0
            ? " (SIGHUP is ignored in the test process, so in the gateway it starts too: is it running under nohup?)"
            : string.Empty;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    private static async Task SignalAsync(int processId, string signal = "HUP")
    {
        using var kill = Process.Start("kill", ["-" + signal, processId.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
        Assert.Equal(0, kill.ExitCode);
    }
}
