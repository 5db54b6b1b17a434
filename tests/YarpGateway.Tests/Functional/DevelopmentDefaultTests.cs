using System.Net;
using System.Text.RegularExpressions;

namespace YarpGateway.Tests.Functional;

/// <summary>The built-in default (README quick start): Development, demo backends on 5101/5102, weights 3/1.</summary>
public partial class DevelopmentDefaultTests
{
    [GeneratedRegex(@"Now listening on: (http://[^\s]+)")]
    private static partial Regex Listening();

    [Fact]
    public async Task Development_ServesEcho_SplitThreeToOne()
    {
        using var gateway = GatewayProcess.Start("Development",
            "--Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:0", "--Kestrel:Endpoints:Management:Url=http://127.0.0.1:0");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };

        // Both endpoints log their address; the management one answers /healthz/live.
        List<string> addresses = [];
        Assert.True(await Eventually.TrueAsync(() =>
        {
            addresses = Listening().Matches(gateway.StandardOutput).Select(m => m.Groups[1].Value).ToList();
            return addresses.Count == 2;
        }, TimeSpan.FromSeconds(30)), "gateway did not start: " + gateway.StandardOutput + gateway.StandardError);

        string? proxy = null;
        foreach (var address in addresses)
        {
            using var response = await http.GetAsync(address + "/healthz/live");
            if (response.StatusCode != HttpStatusCode.OK)
            {
                proxy = address;
            }
        }

        Assert.NotNull(proxy);
        var counts = new Dictionary<string, int>();
        for (var i = 0; i < 400; i++)
        {
            var body = await http.GetStringAsync(proxy + "/echo");
            var name = body.Split(' ')[0];
            counts[name] = counts.GetValueOrDefault(name) + 1;
        }

        Assert.Equal(300, counts["demo-a"]);
        Assert.Equal(100, counts["demo-b"]);
    }
}
