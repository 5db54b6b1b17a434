using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using YarpGateway.Telemetry;

namespace YarpGateway.Tests.Telemetry;

public class EventNameJsonConsoleFormatterTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AnEventWithAName_IsWrittenWithIt_AsValidJson(bool indented)
    {
        var json = Write(new EventId(4, "ConfigReloadRejected"), "Proxy configuration reload rejected; \"EventId\":9 in a message", indented);

        using var document = JsonDocument.Parse(json);
        Assert.Equal(4, document.RootElement.GetProperty("EventId").GetInt32());
        Assert.Equal("ConfigReloadRejected", document.RootElement.GetProperty("EventName").GetString());
        Assert.Equal("Proxy configuration reload rejected; \"EventId\":9 in a message", document.RootElement.GetProperty("Message").GetString());
        Assert.Equal(JsonValueKind.String, document.RootElement.GetProperty("Timestamp").ValueKind); // the runtime's options still apply
    }

    [Fact]
    public void AnEventWithoutAName_IsWrittenAsTheRuntimeWritesIt()
    {
        var json = Write(new EventId(7), "no name", indented: false);

        using var document = JsonDocument.Parse(json);
        Assert.Equal(7, document.RootElement.GetProperty("EventId").GetInt32());
        Assert.False(document.RootElement.TryGetProperty("EventName", out _));
    }

    private static string Write(EventId eventId, string message, bool indented)
    {
        var services = new ServiceCollection();
        services.AddLogging(logging => logging.AddJsonConsole(options =>
        {
            options.JsonWriterOptions = new JsonWriterOptions { Indented = indented };
            options.TimestampFormat = "yyyy-MM-ddTHH:mm:ss";
            options.UseUtcTimestamp = true;
        }));
        EventNameJsonConsoleFormatter.Replace(services);
        using var provider = services.BuildServiceProvider();
        var formatter = provider.GetServices<ConsoleFormatter>().First(f => f.Name == ConsoleFormatterNames.Json);
        Assert.IsType<EventNameJsonConsoleFormatter>(formatter);

        using var writer = new StringWriter();
        var entry = new LogEntry<string>(LogLevel.Error, "YarpGateway.Configuration.GatewayConfigProvider", eventId, message, null, (state, _) => state);
        formatter.Write(in entry, null, writer);
        return writer.ToString();
    }
}
