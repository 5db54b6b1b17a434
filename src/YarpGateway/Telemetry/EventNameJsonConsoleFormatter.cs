using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using YarpGateway.Configuration;

namespace YarpGateway.Telemetry;

/// <summary>
/// ASP.NET Core's <c>json</c> console format, as it is (its options, scopes and timestamps), with the
/// event's name next to its number: <c>"EventId":4,"EventName":"ConfigReloadRejected"</c>. The
/// runtime's formatter writes the number only, and the gateway's documentation, runbooks and alerts
/// name events; a log search for <c>ConfigReloadRejected</c> found nothing in the shipped deployment's
/// logs. An event without a name is written exactly as the runtime writes it.
/// </summary>
internal sealed class EventNameJsonConsoleFormatter(ConsoleFormatter json) : ConsoleFormatter(ConsoleFormatterNames.Json)
{
    private const string EventIdProperty = "\"EventId\":";

    [ThreadStatic]
    private static StringWriter? t_line;

    /// <summary>Puts this formatter in place of the runtime's <c>json</c> one, which it wraps; nothing if there is none.</summary>
    public static void Replace(IServiceCollection services)
        => services.Decorate<ConsoleFormatter>(static d => d.ImplementationType is { Name: "JsonConsoleFormatter" }, static (_, json) => new EventNameJsonConsoleFormatter(json()));

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        if (string.IsNullOrEmpty(logEntry.EventId.Name))
        {
            json.Write(in logEntry, scopeProvider, textWriter);
            return;
        }

        var line = t_line ??= new StringWriter();
        line.GetStringBuilder().Clear();
        json.Write(in logEntry, scopeProvider, line);
        var text = line.ToString();
        if (line.GetStringBuilder().Capacity > 64 * 1024)
        {
            t_line = null; // one huge line does not stay with the thread
        }

        var at = IndexOfNumberEnd(text);
        if (at < 0)
        {
            textWriter.Write(text);
            return;
        }

        textWriter.Write(text.AsSpan(0, at));
        textWriter.Write(",\"EventName\":\"");
        textWriter.Write(JsonEncodedText.Encode(logEntry.EventId.Name).Value); // escaped as the serializer escapes a string
        textWriter.Write('"');
        textWriter.Write(text.AsSpan(at));
    }

    // Where the EventId property's number ends: the first "EventId": that is a property name (in a
    // string value its quotes would be escaped), then optional white space (an indented format) and digits.
    private static int IndexOfNumberEnd(string value)
    {
        var start = value.IndexOf(EventIdProperty, StringComparison.Ordinal);
        if (start < 0)
        {
            return -1;
        }

        var i = start + EventIdProperty.Length;
        while (i < value.Length && char.IsWhiteSpace(value[i]))
        {
            i++;
        }

        var digits = i;
        while (i < value.Length && (char.IsAsciiDigit(value[i]) || (i == digits && value[i] == '-')))
        {
            i++;
        }

        return i > digits ? i : -1;
    }
}
