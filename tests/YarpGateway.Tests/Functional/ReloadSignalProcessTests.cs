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
            "no SIGHUP line: " + gateway.StandardOutput + gateway.StandardError);

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

    private static async Task SignalAsync(int processId, string signal = "HUP")
    {
        using var kill = Process.Start("kill", ["-" + signal, processId.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
        Assert.Equal(0, kill.ExitCode);
    }
}
