using YarpGateway.Configuration;
using YarpGateway.WebSockets;

namespace YarpGateway.Tests.WebSockets;

public class WebSocketSettingsTests
{
    [Fact]
    public void RouteMetadataOverridesOptions()
    {
        var options = new WebSocketProxyOptions();
        var route = new Dictionary<string, string>
        {
            ["WebSocketOutboundBufferBytes"] = "8192",
            ["WebSocketSlowClientPolicy"] = "dropmessages",
            ["WebSocketWriteTimeout"] = "00:00:05",
            ["WebSocketDisconnectAfter"] = "00:00:02",
            ["WebSocketMaxDroppedMessages"] = "0",
            ["WebSocketMaxDroppedBytes"] = "1048576",
            ["WebSocketOnly"] = "true",
        };

        var defaults = WebSocketSettings.Resolve(options, null);
        var settings = WebSocketSettings.Resolve(options, route);

        Assert.Equal(new WebSocketSettings(64 * 1024, SlowClientPolicy.Backpressure, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(10), 1000, 16 * 1024 * 1024, TimeSpan.FromSeconds(5), false) { Source = options }, defaults);
        Assert.Equal(new WebSocketSettings(8192, SlowClientPolicy.DropMessages, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(2), 0, 1048576, TimeSpan.FromSeconds(5), true) { Source = options }, settings);
    }

    [Theory]
    [InlineData("WebSocketOutboundBufferBytes", "1023")]
    [InlineData("WebSocketOutboundBufferBytes", "67108865")]
    [InlineData("WebSocketOutboundBufferBytes", "64k")]
    [InlineData("WebSocketSlowClientPolicy", "Drop")]
    [InlineData("WebSocketSlowClientPolicy", "1")]
    [InlineData("WebSocketWriteTimeout", "0")]
    [InlineData("WebSocketDisconnectAfter", "later")]
    [InlineData("WebSocketMaxDroppedMessages", "-1")]
    [InlineData("WebSocketMaxDroppedBytes", "lots")]
    [InlineData("WebSocketOnly", "yes")]
    public void BadMetadata_IsAnErrorNamingTheKey(string key, string value)
    {
        var errors = new List<ConfigError>();

        WebSocketSettings.Validate(new Dictionary<string, string> { [key] = value }, "X:Metadata", errors);

        var error = Assert.Single(errors);
        Assert.Equal("X:Metadata:" + key, error.Key);
        Assert.Contains($"'{value}'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OptionsValidator_ListsEveryBadValue()
    {
        var options = new WebSocketProxyOptions
        {
            OutboundBufferBytes = 10,
            SlowClientPolicy = (SlowClientPolicy)7,
            WriteTimeout = TimeSpan.Zero,
            DisconnectAfter = TimeSpan.FromSeconds(-1),
            MaxDroppedMessages = -1,
            MaxDroppedBytes = -1,
            CloseWindow = TimeSpan.FromSeconds(-1),
            CloseTimeout = TimeSpan.Zero,
        };

        var result = new WebSocketProxyOptionsValidator().Validate(null, options);

        Assert.Equal(8, result.Failures!.Count());
        Assert.All(result.Failures!, f => Assert.StartsWith("Gateway:WebSockets:", f, StringComparison.Ordinal));
        Assert.True(new WebSocketProxyOptionsValidator().Validate(null, new WebSocketProxyOptions()).Succeeded);
    }
}
