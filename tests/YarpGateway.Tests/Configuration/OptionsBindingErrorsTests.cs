using Microsoft.Extensions.Configuration;
using YarpGateway.Admission;
using YarpGateway.Configuration;
using YarpGateway.Resilience;
using YarpGateway.WebSockets;

namespace YarpGateway.Tests.Configuration;

/// <summary>The binder stops at the first value it cannot convert; start-up must still list every bad value and every other error of the section.</summary>
public class OptionsBindingErrorsTests
{
    private static IConfigurationSection Section(string name, params (string Key, string Value)[] values)
        => new ConfigurationBuilder()
            .AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>($"{name}:{v.Key}", v.Value)))
            .Build()
            .GetSection(name);

    [Fact]
    public void EveryUnconvertibleValue_ThenTheValidatorsErrorsForTheRest()
    {
        var section = Section(WebSocketProxyOptions.SectionName,
            ("SlowClientPolicy", "Sometimes"), ("WriteTimeout", "30s"), ("OutboundBufferBytes", "10"), ("CloseTimeout", "00:00:00"), ("DisconnectAfter", "00:00:02"));

        var errors = OptionsBindingErrors.Find(section, [new WebSocketProxyOptionsValidator()]);

        Assert.Equal(
            [
                "Gateway:WebSockets:SlowClientPolicy: 'Sometimes' is not one of Backpressure, DropMessages, Disconnect.",
                "Gateway:WebSockets:WriteTimeout: '30s' is not a time span ([d.]hh:mm:ss[.fff], e.g. 00:00:05 for 5 s).",
            ],
            errors.Take(2).Select(e => e.ToString()).Order(StringComparer.Ordinal));
        var rest = string.Join("\n", errors.Skip(2).Select(e => e.ToString()));
        Assert.Contains("OutboundBufferBytes", rest, StringComparison.Ordinal);
        Assert.Contains("CloseTimeout", rest, StringComparison.Ordinal);
        Assert.DoesNotContain("DisconnectAfter", rest, StringComparison.Ordinal); // a good value stays good
        Assert.Equal(4, errors.Count);
    }

    [Theory]
    // The binder takes any number for an enum: a cluster's VersionPolicy of -1 passed, and every request to it got 502.
    [InlineData(typeof(System.Net.Http.HttpVersionPolicy), "-1", false)]
    [InlineData(typeof(System.Net.Http.HttpVersionPolicy), "7", false)]
    [InlineData(typeof(System.Net.Http.HttpVersionPolicy), "2", true)] // RequestVersionExact, by its number
    [InlineData(typeof(System.Net.Http.HttpVersionPolicy), "RequestVersionExact", true)]
    [InlineData(typeof(System.Net.Http.HttpVersionPolicy?), "-1", false)]
    [InlineData(typeof(System.Security.Authentication.SslProtocols), "Tls12, Tls13", true)] // [Flags]: a combination of named bits
    [InlineData(typeof(System.Security.Authentication.SslProtocols), "1", false)] // a bit no name has
    [InlineData(typeof(int), "12", true)]
    [InlineData(typeof(int), "twelve", false)]
    public void Converts_AnEnumOnlyToOneOfItsValues(Type type, string value, bool converts)
        => Assert.Equal(converts, OptionsBindingErrors.Converts(type, value));

    [Fact]
    public void NestedArrayAndNullableValues_AreCheckedWhereTheyBind()
    {
        var section = Section(ResilienceOptions.SectionName,
            ("RetryStatusCodes:0", "502"), ("RetryStatusCodes:1", "five-oh-three"), ("RetryBudget:Ratio", "a fifth"), ("MaxRetries", "2"));

        var errors = OptionsBindingErrors.Find(section, [new ResilienceOptionsValidator()]);

        Assert.Equal(
            ["Gateway:Resilience:RetryBudget:Ratio: 'a fifth' is not a number.", "Gateway:Resilience:RetryStatusCodes:1: 'five-oh-three' is not a whole number."],
            errors.Select(e => e.ToString()).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void AllValuesConvert_NothingToReport()
    {
        var section = Section(AdmissionOptions.SectionName, ("MaxConcurrentConnections", "100"), ("Connections:MaxWait", "00:00:10"), ("NotAnOption", "whatever"));

        Assert.Empty(OptionsBindingErrors.Find(section, [new AdmissionOptionsValidator()]));
    }

    [Theory]
    [InlineData("SlowClientPolicy", typeof(SlowClientPolicy))]
    [InlineData("slowclientpolicy", typeof(SlowClientPolicy))] // configuration keys are case-insensitive
    [InlineData("NoSuchKey", null)]                             // the binder ignores it
    public void ValueType_FollowsTheBindersRules(string key, Type? expected)
        => Assert.Equal(expected, OptionsBindingErrors.ValueType(typeof(WebSocketProxyOptions), [key]));

    [Fact]
    public void ValueType_SeesThroughNullableAndNesting()
    {
        Assert.Equal(typeof(long?), OptionsBindingErrors.ValueType(typeof(AdmissionOptions), ["MaxConcurrentConnections"]));
        Assert.Equal(typeof(double), OptionsBindingErrors.ValueType(typeof(ResilienceOptions), ["RetryBudget", "Ratio"]));
        Assert.Equal(typeof(int), OptionsBindingErrors.ValueType(typeof(ResilienceOptions), ["RetryStatusCodes", "3"]));
        Assert.Null(OptionsBindingErrors.ValueType(typeof(ResilienceOptions), ["RetryBudget"])); // a section, not a value
    }
}
