using System.Net;

namespace YarpGateway.Tests.Functional;

/// <summary>The built-in default (README.md, quick start): Development, demo backends on 5101/5102, weights 3/1.</summary>
public class DevelopmentDefaultTests
{
    [Fact]
    public async Task Development_ServesEcho_SplitThreeToOne()
    {
        using var gateway = GatewayProcess.Start("Development",
            "--Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:0", "--Kestrel:Endpoints:Management:Url=http://127.0.0.1:0");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };

        var (proxy, _) = await gateway.FindEndpointsAsync();
        var counts = new Dictionary<string, int>();
        for (var i = 0; i < 400; i++)
        {
            var body = await http.GetStringAsync(new Uri(proxy, "/echo"));
            var name = body.Split(' ')[0];
            counts[name] = counts.GetValueOrDefault(name) + 1;
        }

        Assert.Equal(300, counts["demo-a"]);
        Assert.Equal(100, counts["demo-b"]);
    }
}
