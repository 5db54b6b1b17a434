using Microsoft.Extensions.Options;
using YarpGateway.Telemetry;

namespace YarpGateway.SessionAffinity;

/// <summary>
/// YARP's session affinity logs once per request what a client sent: an error with a stack trace for
/// every affinity value that does not decrypt (a made-up one, or every returning client's after a
/// restart or on another replica under <c>Cookie</c> and <c>CustomHeader</c>), one for every
/// <c>CustomHeader</c> request with the header twice, and a warning for every request whose key names
/// a destination that is gone or unavailable (a rolling update, an ejection). Tried: 50 requests with
/// a made-up cookie wrote 50 errors of seven lines each. Its category is re-logged once a second per
/// event kind, with the count of the rest, as a warning (what a client sends is not the gateway's
/// error) and with the exception's type and message but not its stack trace, under
/// <c>YarpGateway.SessionAffinity.SessionAffinityLogThrottle</c>. A <c>Logging:LogLevel</c> entry
/// for <see cref="Category"/> restores YARP's own lines.
/// </summary>
internal sealed partial class SessionAffinityLogThrottle(IServiceProvider services, TimeProvider timeProvider) : FrameworkLogThrottle(services, timeProvider, [Category])
{
    internal const string Category = "Yarp.ReverseProxy.SessionAffinity";

    protected override LogLevel LevelOf(LogLevel level) => level > LogLevel.Warning ? LogLevel.Warning : level;

    protected override void Write(ILogger output, LogLevel level, string category, string eventName, string message, long suppressed, Exception? exception)
    {
        if (output.IsEnabled(level))
        {
            Log.Throttled(output, level, category, eventName, exception is null ? message : $"{message} {exception.GetType().Name}: {exception.Message}", suppressed);
        }
    }

    /// <summary>Applies the levels, unless the configuration sets one for YARP's session affinity.</summary>
    internal sealed class FilterSetup(IConfiguration configuration) : IConfigureOptions<LoggerFilterOptions>
    {
        public void Configure(LoggerFilterOptions options)
        {
            if (configuration[$"Logging:LogLevel:{Category}"] is null)
            {
                Apply<SessionAffinityLogThrottle>(options, [Category]);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1, Message = "{Category}[{Event}]: {Message} ({Suppressed} more like it in the last second.)", EventName = "SessionAffinityThrottled")]
        public static partial void Throttled(ILogger logger, LogLevel level, string category, string @event, string message, long suppressed);
    }
}
