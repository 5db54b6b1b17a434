namespace YarpGateway.Tests.Functional;

public class WeightedDistributionTests
{
    [Theory]
    [InlineData("WeightedRoundRobin")]
    [InlineData("WeightedLeastRequests")]
    public async Task TenThousandRequests_LandWithinTwoPointsOfWeightShares_DrainedGetsNone(string policy)
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var c = await TestBackend.StartAsync("c");
        await using var drained = await TestBackend.StartAsync("drained");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll(policy, (a, "5"), (b, "3"), (c, "1"), (drained, "0")));

        var result = await Load.RunAsync(gateway, requests: 10_000, workers: 8);

        Assert.True(result.Failures == 0, $"{result.Failures} failures: {string.Join("; ", result.FailureSamples)}");
        Assert.Equal(10_000, result.Total);
        Assert.InRange(result.Share("a"), 5 / 9.0 - 0.02, 5 / 9.0 + 0.02);
        Assert.InRange(result.Share("b"), 3 / 9.0 - 0.02, 3 / 9.0 + 0.02);
        Assert.InRange(result.Share("c"), 1 / 9.0 - 0.02, 1 / 9.0 + 0.02);
        Assert.Equal(0, drained.Requests);
        Assert.Equal(result.ByBackend["a"], a.Requests);
    }

    [Fact]
    public async Task DefaultWeightIsOne()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (a, null), (b, "1")));

        var result = await Load.RunAsync(gateway, requests: 400, workers: 1);

        Assert.Equal(0, result.Failures);
        Assert.Equal(200, result.ByBackend["a"]);
        Assert.Equal(200, result.ByBackend["b"]);
    }

    [Fact]
    public async Task AllDrained_Returns503AndReachesNoBackend()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedLeastRequests", (a, "0")));
        using var client = gateway.CreateProxyClient();

        using var response = await client.GetAsync("/");

        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(0, a.Requests);
    }
}
