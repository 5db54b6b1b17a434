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

    [Theory]
    [InlineData("WeightedRoundRobin")]
    [InlineData("WeightedLeastRequests")]
    public async Task RetriesOffARefusingDestination_KeepTheLiveOnesAtTheirRatio(string policy)
    {
        // The weight-1 destination refuses every connection and, with passive health off, stays in
        // rotation: a ninth of the requests are retried. The live two must still split 5:3.
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        var config = ProxyConfigJson.CatchAll(policy, (a, "5"), (b, "3"));
        var cluster = config["ReverseProxy"]!["Clusters"]!["c1"]!.AsObject();
        cluster["Destinations"]!["dead"] = new System.Text.Json.Nodes.JsonObject
        {
            ["Address"] = $"http://127.0.0.1:{LoopbackPort.Unused()}/",
            ["Metadata"] = new System.Text.Json.Nodes.JsonObject { ["Weight"] = "1" },
        };
        cluster["HealthCheck"] = new System.Text.Json.Nodes.JsonObject { ["Passive"] = new System.Text.Json.Nodes.JsonObject { ["Enabled"] = false } };
        await using var gateway = await GatewayUnderTest.StartAsync(config);

        var result = await Load.RunAsync(gateway, requests: 1800, workers: 4);

        Assert.True(result.Failures == 0, $"{result.Failures} failures: {string.Join("; ", result.FailureSamples)}");
        Assert.True(gateway.CounterSum("gateway.proxy.retries|cluster=c1|reason=connect_failure") >= 150, gateway.DescribeCounters("gateway.proxy"));
        Assert.InRange(result.Share("a"), 5 / 8.0 - 0.02, 5 / 8.0 + 0.02);
        Assert.InRange(result.Share("b"), 3 / 8.0 - 0.02, 3 / 8.0 + 0.02);
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
