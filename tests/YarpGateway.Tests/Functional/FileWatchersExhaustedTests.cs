using System.Net;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;

namespace YarpGateway.Tests.Functional;

/// <summary>
/// Linux allows 128 inotify instances per user by default, shared by every container that runs as the same user on
/// a node. With none left, the runtime's file watcher threw from <c>WebApplication.CreateBuilder</c> and the gateway
/// never started ("Unhandled exception. System.IO.IOException: The configured user limit (128) on the number of
/// inotify instances has been reached"). It now starts, says once that its files are checked instead of watched,
/// and applies an edit within the check's interval. Runs alone: it takes every instance the user has left.
/// </summary>
[Collection(TimingSensitive.Name)]
public class FileWatchersExhaustedTests
{
    [Fact]
    public async Task WithNoInotifyInstanceLeft_TheGatewayStarts_AndAppliesAnEditByCheckingTheFile()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        await using var backend = await TestBackend.StartAsync("b");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        var configPath = ProxyConfigJson.WriteTemp("yarpgateway-no-inotify-", config);
        var held = new List<int>();
        try
        {
            for (int fd; held.Count < 100_000 && (fd = InotifyInit()) >= 0;)
            {
                held.Add(fd);
            }

            Assert.True(held.Count < 100_000, "inotify instances seem unlimited here");
            using var gateway = GatewayProcess.StartOnLoopback(configPath);
            var (proxy, _) = await gateway.FindEndpointsAsync();
            using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            using (var response = await client.GetAsync(new Uri(proxy, "/x")))
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }

            // At most one line for all the files, naming the setting to raise. (Not exactly one: an instance another
            // process lets go of meanwhile, a test gateway of the suite's that is still exiting, may reach this one.)
            var lines = System.Text.RegularExpressions.Regex.Count(gateway.StandardOutput, "are not watched");
            Assert.True(lines <= 1, gateway.StandardOutput);
            Assert.True(lines == 0 || gateway.StandardOutput.Contains("fs.inotify.max_user_instances", StringComparison.Ordinal), gateway.StandardOutput);

            // An edit is read by the periodic check (every 5 s): the catch-all route becomes /only/.
            config["ReverseProxy"]!["Routes"]!["all"]!["Match"]!["Path"] = "/only/{**rest}";
            ProxyConfigJson.WriteAtomically(configPath, config);
            Assert.True(await Eventually.TrueAsync(async () =>
            {
                using var response = await client.GetAsync(new Uri(proxy, "/x"));
                return response.StatusCode == HttpStatusCode.NotFound;
            }, TimeSpan.FromSeconds(20)), "the edit was not applied: " + gateway.StandardOutput);
        }
        finally
        {
            foreach (var fd in held)
            {
                _ = Close(fd);
            }

            File.Delete(configPath);
        }
    }

    [DllImport("libc", EntryPoint = "inotify_init", SetLastError = true)]
    private static extern int InotifyInit();

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int fd);
}
