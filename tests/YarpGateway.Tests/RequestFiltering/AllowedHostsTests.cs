using System.Net;
using System.Text.Json.Nodes;
using YarpGateway.RequestFiltering;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.RequestFiltering;

public class AllowedHostsTests
{
    private const string Rejected = "gateway.config.reloads|result=rejected";
    private static readonly TimeSpan ReloadBound = TimeSpan.FromSeconds(5);

    [Theory]
    [InlineData("*")]
    [InlineData("example.com;*.example.com;127.0.0.1;[::1];localhost")]
    [InlineData("")]
    public void HostsAsHostFilteringMatchesThem_AreTaken(string value)
        => Assert.Empty(Find(value));

    [Theory]
    [InlineData("127.0.0.1:8080", "'127.0.0.1:8080' has a port")]
    [InlineData("[::1]:8080", "'[::1]:8080' has a port")]
    [InlineData("https://a.example", "'https://a.example' has a scheme")]
    [InlineData("a.example, b.example", "'a.example, b.example' holds a comma or a space")]
    [InlineData("::1", "'::1' is an IPv6 address without its brackets ([::1])")]
    [InlineData("a.example/api", "'a.example/api' has a path")]
    public void AnEntryNoHostMatches_IsAnError(string value, string expected)
        => Assert.StartsWith("AllowedHosts: " + expected + ", so it matches no request's Host", Assert.Single(Find(value)), StringComparison.Ordinal);

    [Fact]
    public async Task AReloadThatWouldRefuseEveryRequest_IsRefused_AndAGoodOneApplies()
    {
        // Before: an AllowedHosts with a port was applied at once, and every request got 400, with nothing in the log.
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["AllowedHosts"] = "*";
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        config["AllowedHosts"] = $"127.0.0.1:{gateway.ProxyAddress.Port}";
        gateway.WriteConfig(config);
        Assert.True(await Eventually.TrueAsync(() => gateway.Counter(Rejected) == 1, ReloadBound), "not refused: " + gateway.DescribeCounters("gateway.config"));
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("SectionReloadRejected", StringComparison.Ordinal)
            && l.Contains($"{gateway.ConfigPath}: AllowedHosts: '127.0.0.1:{gateway.ProxyAddress.Port}' has a port", StringComparison.Ordinal));
        using (var response = await client.GetAsync("/"))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // A good edit applies: this client's host (127.0.0.1) is no longer allowed.
        config["AllowedHosts"] = "gateway.example";
        gateway.WriteConfig(config);
        Assert.True(await Eventually.TrueAsync(async () =>
        {
            using var response = await client.GetAsync("/");
            return response.StatusCode == HttpStatusCode.BadRequest;
        }, ReloadBound), "the good edit was not applied");
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("SectionReloaded", StringComparison.Ordinal) && l.Contains("AllowedHosts: '*' -> 'gateway.example'", StringComparison.Ordinal));
    }

    private static List<string> Find(string value)
        => [.. AllowedHosts.Find(new ConfigurationBuilder().AddInMemoryCollection([new("AllowedHosts", value)]).Build()).Select(e => $"{e.Key}: {e.Message}")];
}
