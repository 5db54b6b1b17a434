using YarpGateway.Configuration;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Configuration;

/// <summary>
/// A time longer than .NET's timers take, in any <c>Gateway:*</c> section, is a listed configuration error. Found by
/// trying 60 days: <c>Gateway:Telemetry:SaturationLogInterval</c>, <c>SchedulerProbeInterval</c> and
/// <c>Gateway:Resilience:ConnectTimeout</c> ended the process with an unhandled exception (exit 134).
/// </summary>
public class TimeSpanRangeTests
{
    /// <summary>Every time setting, in every section and the sections in them.</summary>
    public static TheoryData<string> Times() => [.. GatewaySettingsSchema.Leaves().Where(s => s.Type == typeof(TimeSpan)).Select(s => s.Key)];

    [Theory]
    [MemberData(nameof(Times))]
    public async Task ATimeLongerThanATimerTakes_IsAListedError(string key)
    {
        await using var backend = await TestBackend.StartAsync("b");

        var ex = await Assert.ThrowsAsync<GatewayConfigurationException>(
            () => GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)), $"--{key}=60.00:00:00"));

        // Other checks may add theirs (a base delay above its maximum); this one names the key, and only it.
        Assert.Contains(ex.Errors, e => e.Key == key && e.Message == $"{key} must be at most 24.20:31:23 (about 24 days, the longest .NET's timers wait); got 60.00:00:00.");
        Assert.Equal(key, ex.Errors.Single(e => e.Message.Contains("the longest .NET's timers wait", StringComparison.Ordinal)).Key);
    }

    [Fact]
    public async Task ATimeInsideAMap_IsNamedByItsKey_AndTheLongestATimerTakes_IsAccepted()
    {
        await using var backend = await TestBackend.StartAsync("b");
        string[] policy = ["--Gateway:RateLimiting:Policies:p:PermitLimit=5", "--Gateway:RateLimiting:Policies:p:Kind=FixedWindow"];

        var ex = await Assert.ThrowsAsync<GatewayConfigurationException>(
            () => GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)), [.. policy, "--Gateway:RateLimiting:Policies:p:Window=365.00:00:00"]));
        Assert.Equal("Gateway:RateLimiting:Policies:p:Window", Assert.Single(ex.Errors).Key);

        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)), [.. policy, "--Gateway:RateLimiting:Policies:p:Window=24.20:31:23"]);
    }
}
