using YarpGateway.Configuration;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Configuration;

/// <summary>
/// A time written as a number alone (<c>"30"</c>) is a listed error wherever the gateway reads a time: .NET reads it as
/// 30 days. Found by trying it: a health check <c>Interval</c> of <c>"10"</c>, a route <c>Timeout</c> of <c>"3"</c>,
/// <c>Metadata.TryTimeout</c> <c>"2"</c> and <c>Kestrel:Limits:KeepAliveTimeout</c> <c>"3"</c> all passed <c>--check</c>
/// as that many days.
/// </summary>
public class TimeSpanDaysAloneTests
{
    [Theory]
    [InlineData("30", true)]
    [InlineData("1", true)]
    [InlineData("-5", true)]
    [InlineData("0", false)] // 0 in any unit
    [InlineData("00:00:30", false)]
    [InlineData("30.00:00:00", false)] // days, written as days
    [InlineData("00:00:00.500", false)]
    [InlineData("soon", false)] // not a time at all: the ordinary error says so
    public void ANumberAlone_IsDaysAlone(string text, bool daysAlone)
        => Assert.Equal(daysAlone, TimeSpans.IsDaysAlone(text));

    [Fact]
    public void TheRefusal_SaysWhatItWouldMean_AndHowToWriteWhatWasLikelyMeant()
    {
        Assert.Equal("'90' would be read as 90 days (a number alone is days in a .NET time span): write 00:01:30 for 90 seconds, 01:30:00 for 90 minutes, or 90.00:00:00 if days are meant.",
            TimeSpans.Refusal("90", "a time span"));
        Assert.Equal("'1' would be read as 1 day (a number alone is days in a .NET time span): write 00:00:01 for 1 second, 00:01:00 for 1 minute, or 1.00:00:00 if days are meant.",
            TimeSpans.Refusal("1", "a time span"));
        Assert.Equal("'soon' is not a time span.", TimeSpans.Refusal("soon", "a time span"));
        Assert.False(TimeSpans.TryParse("30", out _));
        Assert.True(TimeSpans.TryParse("00:00:30", out var thirty));
        Assert.Equal(TimeSpan.FromSeconds(30), thirty);
    }

    /// <summary>Every time setting, in every <c>Gateway:*</c> section and the sections in them.</summary>
    public static TheoryData<string> Times() => TimeSpanRangeTests.Times();

    [Theory]
    [MemberData(nameof(Times))]
    public async Task AGatewayTimeWrittenAsANumberAlone_IsAListedError(string key)
    {
        await using var backend = await TestBackend.StartAsync("b");

        var ex = await Assert.ThrowsAsync<GatewayConfigurationException>(
            () => GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)), $"--{key}=10"));

        var error = Assert.Single(ex.Errors, e => e.Key == key);
        Assert.StartsWith("'10' would be read as 10 days", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RouteAndClusterTimesWrittenAsNumbersAlone_AreEachListed()
    {
        var errors = await GatewayConfigValidatorTests.ValidateAsync("""
        { "ReverseProxy": {
          "Routes": { "r": { "ClusterId": "c", "Timeout": "30", "Match": { "Path": "/{**rest}" },
                             "Metadata": { "TryTimeout": "2", "MaxConcurrency": "10", "QueueTimeout": "5", "WebSocketWriteTimeout": "10" } } },
          "Clusters": { "c": { "HttpRequest": { "ActivityTimeout": "100" },
                               "HealthCheck": { "Active": { "Enabled": true, "Interval": "10", "Timeout": "00:00:02" }, "Passive": { "Enabled": true, "ReactivationPeriod": "60" } },
                               "Metadata": { "ConnectTimeout": "5", "OutlierEjection.Window": "10" },
                               "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);

        string[] keys =
        [
            "ReverseProxy:Routes:r:Timeout", "ReverseProxy:Routes:r:Metadata:TryTimeout", "ReverseProxy:Routes:r:Metadata:QueueTimeout",
            "ReverseProxy:Routes:r:Metadata:WebSocketWriteTimeout", "ReverseProxy:Clusters:c:HttpRequest:ActivityTimeout",
            "ReverseProxy:Clusters:c:HealthCheck:Active:Interval", "ReverseProxy:Clusters:c:HealthCheck:Passive:ReactivationPeriod",
            "ReverseProxy:Clusters:c:Metadata:ConnectTimeout", "ReverseProxy:Clusters:c:Metadata:OutlierEjection.Window",
        ];
        Assert.Equal(keys.Order(), errors.Select(e => e.Key).Order());
        Assert.All(errors, e => Assert.Contains("days (a number alone is days in a .NET time span)", e.Message, StringComparison.Ordinal));
    }

    [Fact]
    public async Task KestrelTimesWrittenAsNumbersAlone_AreEachListed()
    {
        await using var backend = await TestBackend.StartAsync("b");

        var ex = await Assert.ThrowsAsync<GatewayConfigurationException>(() => GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)),
            "--Kestrel:Limits:KeepAliveTimeout=120", "--Kestrel:Limits:RequestHeadersTimeout=30", "--Kestrel:Limits:MinRequestBodyDataRate:GracePeriod=5"));

        Assert.Equal(
            ["Kestrel:Limits:KeepAliveTimeout", "Kestrel:Limits:MinRequestBodyDataRate:GracePeriod", "Kestrel:Limits:RequestHeadersTimeout"],
            ex.Errors.Select(e => e.Key).Order());
        Assert.Contains(ex.Errors, e => e.Message.StartsWith("'120' would be read as 120 days", StringComparison.Ordinal) && e.Message.Contains("00:02:00 for 120 seconds", StringComparison.Ordinal));
    }
}
