using System.Net;
using System.Text.Json.Nodes;

namespace YarpGateway.Tests.Functional;

/// <summary>YARP's session affinity policies through the gateway (HashCookie needs System.IO.Hashing, which YARP 2.3 brings).</summary>
public class SessionAffinityTests
{
    [Theory]
    [InlineData("HashCookie")]
    [InlineData("Cookie")]
    public async Task TheAffinityCookie_KeepsAClientOnOneDestination(string policy)
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (a, null), (b, null));
        config["ReverseProxy"]!["Clusters"]!["c1"]!["SessionAffinity"] = new JsonObject { ["Enabled"] = true, ["Policy"] = policy, ["AffinityKeyName"] = "aff" };
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = new HttpClient(new SocketsHttpHandler { UseCookies = false }) { BaseAddress = gateway.ProxyAddress };

        using var first = await client.GetAsync("/");
        var stuckTo = await first.Content.ReadAsStringAsync();
        var cookie = first.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("aff=", StringComparison.Ordinal)).Split(';')[0];

        var answers = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/");
            request.Headers.Add("Cookie", cookie);
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            answers.Add(await response.Content.ReadAsStringAsync());
        }

        Assert.All(answers, answer => Assert.Equal(stuckTo, answer));
        Assert.Equal(21, stuckTo == "a" ? a.Requests : b.Requests);
    }
}
