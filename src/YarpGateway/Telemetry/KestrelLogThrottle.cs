using Microsoft.Extensions.Options;

namespace YarpGateway.Telemetry;

/// <summary>
/// Kestrel logs protocol abuse once per event, and a hostile client makes those events by the
/// thousand: one HTTP/2 connection that floods streams and reads nothing wrote about 69,000 critical
/// "exceeded the output operations maximum queue size" lines in 10 s, and a connection flood one
/// "connection rejected" warning per connection. An exception that escapes the pipeline is one
/// error with its stack trace per request (tried with two routes routing found ambiguous: every
/// request to them). For Kestrel's categories (<see cref="Categories"/>, and theirs below them),
/// every provider's level is set to None, and this provider re-logs each event kind at most once a
/// second, at its own level and with its exception, with the count of the rest, under
/// <c>YarpGateway.Telemetry.KestrelLogThrottle</c>. Below Warning those categories log per frame and
/// are dropped, but for one: a request Kestrel refuses before the gateway sees it (400, 414, 431: a request line, headers
/// or a header count over <c>Kestrel:Limits</c>, or bytes that are not HTTP), a Debug event of Kestrel's, is written at
/// Information, naming the limit where there is one; so is an HTTP/2 connection Kestrel closes for a request's headers it
/// could not decode (a header over <c>Kestrel:Limits:Http2:MaxRequestHeaderFieldSize</c>, or HPACK that is not). Before
/// 2026-12-07 nothing was logged: with
/// <c>MaxRequestHeadersTotalSize</c> set too low, every probe got 431 and the pod was never ready, without a word in its log.
/// Off with <c>Gateway:Telemetry:ThrottleKestrelLogs=false</c> (read at start).
/// </summary>
internal sealed partial class KestrelLogThrottle(IServiceProvider services, TimeProvider timeProvider) : FrameworkLogThrottle(services, timeProvider, Categories)
{
    /// <summary>
    /// Kestrel's categories, whose events are per connection, per stream or per request: its own (an exception
    /// that escaped the pipeline, <c>ApplicationError</c>), and below it those of HTTP/2, HTTP/3, connections and
    /// bad requests. A filter on a category applies to the categories below it too.
    /// </summary>
    public static readonly string[] Categories =
    [
        "Microsoft.AspNetCore.Server.Kestrel",
    ];

    /// <summary>Kestrel's category for requests it refuses itself.</summary>
    internal const string BadRequestsCategory = "Microsoft.AspNetCore.Server.Kestrel.BadRequests";

    /// <summary>Kestrel's event for one (Debug): <c>Connection id "..." bad request data: "Request headers too long."</c></summary>
    internal const string BadRequestEvent = "ConnectionBadRequest";

    /// <summary>What Kestrel says of a request over one of its limits, and the limit.</summary>
    private static readonly (string Says, string Limit)[] Limits =
    [
        ("Request headers too long", "MaxRequestHeadersTotalSize"),
        ("Request line too long", "MaxRequestLineSize"),
        ("Request contains too many headers", "MaxRequestHeaderCount"),
    ];

    /// <summary>Kestrel's category for HTTP/2 connections.</summary>
    internal const string Http2Category = "Microsoft.AspNetCore.Server.Kestrel.Http2";

    /// <summary>
    /// Kestrel's event (Debug) for a request's headers it could not decode, among them a header over
    /// <c>Kestrel:Limits:Http2:MaxRequestHeaderFieldSize</c>: the connection is closed. Tried with the limit at 600 bytes and
    /// a 1,000-byte header: the client's connection was closed, and nothing was logged.
    /// </summary>
    internal const string HPackDecodingErrorEvent = "HPackDecodingError";

    protected override bool PromotesIn(string category) => category is BadRequestsCategory or Http2Category;

    protected override LogLevel? Promoted(string category, EventId eventId) => (category, eventId.Name) switch
    {
        (BadRequestsCategory, BadRequestEvent) or (Http2Category, HPackDecodingErrorEvent) => LogLevel.Information,
        _ => null,
    };

    protected override void Write(ILogger output, LogLevel level, string category, string eventName, string message, long suppressed, Exception? exception)
    {
        if (output.IsEnabled(level))
        {
            if (eventName == BadRequestEvent)
            {
                message += Array.Find(Limits, limit => message.Contains(limit.Says, StringComparison.Ordinal)) is { Limit: { } name }
                    ? $" Refused by Kestrel before the gateway saw it: over Kestrel:Limits:{name}, on the proxy or the management endpoint."
                    : " Refused by Kestrel before the gateway saw it.";
            }
            else if (eventName == HPackDecodingErrorEvent)
            {
                message += exception?.Message.Contains("exceeded the set limit", StringComparison.Ordinal) == true
                    ? " The connection was closed by Kestrel before the gateway saw the request: a header over Kestrel:Limits:Http2:MaxRequestHeaderFieldSize (its encoded size), on the proxy or the management endpoint."
                    : " The connection was closed by Kestrel before the gateway saw the request.";
            }

            Log.Throttled(output, level, category, eventName, message, suppressed, exception);
        }
    }

    /// <summary>Applies the levels: None for every provider, Warning for this one, in Kestrel's per-connection categories.</summary>
    internal sealed class FilterSetup(IConfiguration configuration) : IConfigureOptions<LoggerFilterOptions>
    {
        public void Configure(LoggerFilterOptions options)
        {
            // Read as text: a value that is not true or false is listed by start-up's check of the section, and this runs
            // before it, while the host builds its logging (GetValue<bool> threw, and start-up ended with a stack trace).
            if (bool.TryParse(configuration[$"{TelemetryOptions.SectionName}:{nameof(TelemetryOptions.ThrottleKestrelLogs)}"], out var throttle) && !throttle)
            {
                return;
            }

            Apply<KestrelLogThrottle>(options, Categories);
            options.AddFilter<KestrelLogThrottle>(BadRequestsCategory, LogLevel.Debug); // for the events promoted
            options.AddFilter<KestrelLogThrottle>(Http2Category, LogLevel.Debug);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1, Message = "{Category}[{Event}]: {Message} ({Suppressed} more like it in the last second.)", EventName = "KestrelThrottled")]
        public static partial void Throttled(ILogger logger, LogLevel level, string category, string @event, string message, long suppressed, Exception? exception);
    }
}
