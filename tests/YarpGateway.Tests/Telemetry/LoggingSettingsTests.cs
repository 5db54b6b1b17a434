using YarpGateway.Telemetry;

namespace YarpGateway.Tests.Telemetry;

public class LoggingSettingsTests
{
    private static List<string> Errors(params (string Key, string? Value)[] values)
        => [.. LoggingSettings.Find(new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build())
            .Select(e => $"{e.Key}: {e.Message}")];

    [Fact]
    public void LevelsThePlatformReads_AreTaken_InAnyCase_AndEmptyOnesAreSkipped()
        => Assert.Empty(Errors(("Logging:LogLevel:Default", "warning"), ("Logging:LogLevel:Microsoft.AspNetCore", "NONE"), ("Logging:LogLevel:Yarp", ""),
            ("Logging:Console:LogLevel:Default", "Debug"), ("Logging:CaptureScopes", "true"), ("Logging:Console:FormatterName", "json"),
            ("Logging:Console:FormatterOptions:JsonWriterOptions:Indented", "true"), ("Logging:Console:MaxQueueLength", "100")));

    [Fact]
    public void EachValueThePlatformWouldThrowOn_IsNamedByItsKey()
        => Assert.Equal(
            [
                "Logging:CaptureScopes: 'maybe' is not true or false.",
                "Logging:Console:LogLevel:Microsoft: 'Warn' is not a log level: Trace, Debug, Information, Warning, Error, Critical, None.",
                "Logging:LogLevel:Yarp:Forwarder: 'Info' is not a log level: Trace, Debug, Information, Warning, Error, Critical, None.", // nested keys are categories too
                "Logging:LogLevel:Default: 'Verbose' is not a log level: Trace, Debug, Information, Warning, Error, Critical, None.",
                "Logging:Console:QueueFullMode: 'Block' is not one of Wait, DropWrite.",
                "Logging:Console:FormatterOptions:IncludeScopes: 'yes' is not true or false.",
            ],
            Errors(("Logging:CaptureScopes", "maybe"), ("Logging:Console:LogLevel:Microsoft", "Warn"), ("Logging:LogLevel:Default", "Verbose"),
                ("Logging:LogLevel:Yarp:Forwarder", "Info"), ("Logging:Console:QueueFullMode", "Block"), ("Logging:Console:FormatterOptions:IncludeScopes", "yes")));

    [Theory]
    [InlineData("JSON", null)]
    [InlineData("systemd", null)]
    [InlineData("jsn", "Logging:Console:FormatterName: 'jsn' is not a console log format: simple, json, systemd.")] // before: plain lines, without a word
    public void AConsoleFormatTheLoggerDoesNotKnow_IsAnError(string format, string? expected)
        => Assert.Equal(expected is null ? [] : [expected], Errors(("Logging:Console:FormatterName", format)));

    [Fact]
    public void AValueOutOfASettersRange_IsNamedByItsKey()
        => Assert.Equal("Logging:Console:MaxQueueLength: '0' is refused: Specified argument was out of the range of valid values. (Parameter 'value must be larger than zero.')",
            Assert.Single(Errors(("Logging:Console:MaxQueueLength", "0"), ("Logging:Console:FormatterName", "json"))));
}
