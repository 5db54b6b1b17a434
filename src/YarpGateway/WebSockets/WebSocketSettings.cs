using System.Globalization;
using YarpGateway.Configuration;

namespace YarpGateway.WebSockets;

/// <summary>
/// The WebSocket settings in force for one route: <see cref="WebSocketProxyOptions"/> overridden by
/// the route's <c>Metadata</c> (<c>WebSocketOutboundBufferBytes</c>, <c>WebSocketSlowClientPolicy</c>,
/// <c>WebSocketWriteTimeout</c>, <c>WebSocketDisconnectAfter</c>, <c>WebSocketMaxDroppedMessages</c>,
/// <c>WebSocketMaxDroppedBytes</c>, <c>WebSocketOnly</c>).
/// </summary>
internal sealed record WebSocketSettings(
    int OutboundBufferBytes,
    SlowClientPolicy Policy,
    TimeSpan WriteTimeout,
    TimeSpan DisconnectAfter,
    long MaxDroppedMessages,
    long MaxDroppedBytes,
    TimeSpan CloseTimeout,
    bool WebSocketOnly)
{
    public const int MinBufferBytes = 1024;
    public const int MaxBufferBytes = 64 * 1024 * 1024;

    public const string BufferKey = "WebSocketOutboundBufferBytes";
    public const string PolicyKey = "WebSocketSlowClientPolicy";
    public const string WriteTimeoutKey = "WebSocketWriteTimeout";
    public const string DisconnectAfterKey = "WebSocketDisconnectAfter";
    public const string MaxDroppedMessagesKey = "WebSocketMaxDroppedMessages";
    public const string MaxDroppedBytesKey = "WebSocketMaxDroppedBytes";
    public const string WebSocketOnlyKey = "WebSocketOnly";

    /// <summary>The options this was resolved from; a reload makes a new instance and so a new resolution.</summary>
    public WebSocketProxyOptions? Source { get; init; }

    /// <summary>
    /// What Kestrel's socket transport queues for one connection before a write to it waits
    /// (<c>Gateway:Transport:MaxWriteBufferSize</c>, 16 KiB by default; <see cref="long.MaxValue"/> for no limit): with
    /// the write that waits, what Kestrel holds for a client that stopped reading, which DropMessages counts against
    /// the cap (at most half of it).
    /// </summary>
    public long SocketWriteQueueBytes { get; init; } = Endpoints.TransportOptions.DefaultWriteBufferSize;

    public static bool IsValidBufferSize(long value) => value is >= MinBufferBytes and <= MaxBufferBytes;

    public static WebSocketSettings Resolve(WebSocketProxyOptions options, IReadOnlyDictionary<string, string>? route, long socketWriteQueueBytes = Endpoints.TransportOptions.DefaultWriteBufferSize)
    {
        var settings = new WebSocketSettings(
            options.OutboundBufferBytes, options.SlowClientPolicy, options.WriteTimeout, options.DisconnectAfter,
            options.MaxDroppedMessages, options.MaxDroppedBytes, options.CloseTimeout, WebSocketOnly: false)
        { Source = options, SocketWriteQueueBytes = socketWriteQueueBytes };
        if (route is null)
        {
            return settings;
        }

        if (route.TryGetValue(BufferKey, out var text) && TryParseBuffer(text, out var buffer))
        {
            settings = settings with { OutboundBufferBytes = buffer };
        }

        if (route.TryGetValue(PolicyKey, out text) && TryParsePolicy(text, out var policy))
        {
            settings = settings with { Policy = policy };
        }

        if (route.TryGetValue(WriteTimeoutKey, out text) && TimeSpans.TryParse(text, out var time))
        {
            settings = settings with { WriteTimeout = time };
        }

        if (route.TryGetValue(DisconnectAfterKey, out text) && TimeSpans.TryParse(text, out time))
        {
            settings = settings with { DisconnectAfter = time };
        }

        if (route.TryGetValue(MaxDroppedMessagesKey, out text) && TryParseCount(text, out var count))
        {
            settings = settings with { MaxDroppedMessages = count };
        }

        if (route.TryGetValue(MaxDroppedBytesKey, out text) && TryParseCount(text, out count))
        {
            settings = settings with { MaxDroppedBytes = count };
        }

        return settings with { WebSocketOnly = IsWebSocketOnly(route) };
    }

    /// <summary>The route's <c>WebSocketOnly</c> metadata (read on every request, so without resolving the rest).</summary>
    public static bool IsWebSocketOnly(IReadOnlyDictionary<string, string>? route)
        => route is not null && route.TryGetValue(WebSocketOnlyKey, out var text) && bool.TryParse(text, out var only) && only;

    /// <summary>Adds an error for each WebSocket metadata value of a route that does not parse.</summary>
    public static void Validate(IReadOnlyDictionary<string, string>? route, string key, ICollection<ConfigError> errors)
    {
        if (route is null)
        {
            return;
        }

        if (route.TryGetValue(BufferKey, out var text) && !TryParseBuffer(text, out _))
        {
            errors.Add(new ConfigError($"{key}:{BufferKey}", $"'{text}' is not a number of bytes from {MinBufferBytes} to {MaxBufferBytes}."));
        }

        if (route.TryGetValue(PolicyKey, out text) && !TryParsePolicy(text, out _))
        {
            errors.Add(new ConfigError($"{key}:{PolicyKey}", $"'{text}' is not {ExpectedValue.Describe(typeof(SlowClientPolicy))}."));
        }

        foreach (var timeKey in new[] { WriteTimeoutKey, DisconnectAfterKey })
        {
            if (route.TryGetValue(timeKey, out text) && !TimeSpans.TryParse(text, out _))
            {
                errors.Add(new ConfigError($"{key}:{timeKey}", TimeSpans.Refusal(text, TimeSpans.Positive("00:00:10"))));
            }
        }

        foreach (var countKey in new[] { MaxDroppedMessagesKey, MaxDroppedBytesKey })
        {
            if (route.TryGetValue(countKey, out text) && !TryParseCount(text, out _))
            {
                errors.Add(new ConfigError($"{key}:{countKey}", $"'{text}' is not a whole number, 0 or more (0 = no limit)."));
            }
        }

        if (route.TryGetValue(WebSocketOnlyKey, out text) && !bool.TryParse(text, out _))
        {
            errors.Add(new ConfigError($"{key}:{WebSocketOnlyKey}", $"'{text}' is not true or false."));
        }
    }

    private static bool TryParseBuffer(string? text, out int value)
        => int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && IsValidBufferSize(value);

    private static bool TryParsePolicy(string? text, out SlowClientPolicy value)
        => Enum.TryParse(text, ignoreCase: true, out value) && Enum.IsDefined(value) && !int.TryParse(text, out _);

    private static bool TryParseCount(string? text, out long value)
        => long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
}
