namespace YarpGateway.Telemetry;

/// <summary>
/// A logger provider for a framework's categories whose events come once per connection, stream or
/// request, which a hostile client or an outage makes by the thousand: it re-logs each event kind at
/// most once a second, with the count of the rest, under the subclass's own category. The subclass's
/// filter setup (<see cref="Apply{TProvider}"/>) sets every other provider's level for those
/// categories to None, and this one's to Warning; below Warning their events are dropped, but for those the subclass
/// promotes (<see cref="Promoted"/>), which its filter setup lets through to it. The count of a burst's last
/// second is written on its own once the kind has gone quiet (<c>LogSuppressed</c>), so the log never understates it.
/// </summary>
internal abstract class FrameworkLogThrottle(IServiceProvider services, TimeProvider timeProvider, string[] categories) : ILoggerProvider
{
    private LogThrottle? _throttle;
    private ILogger? _output;

    public ILogger CreateLogger(string categoryName)
        => new ThrottledLogger(this, categoryName, Array.Exists(categories, c => categoryName == c || categoryName.StartsWith(c + ".", StringComparison.Ordinal)), PromotesIn(categoryName));

    public void Dispose()
    {
    }

    /// <summary>The levels: None for every provider, Warning for <typeparamref name="TProvider"/>, in <paramref name="categories"/> and below them.</summary>
    protected static void Apply<TProvider>(LoggerFilterOptions options, string[] categories)
        where TProvider : ILoggerProvider
    {
        foreach (var category in categories)
        {
            options.AddFilter(category, LogLevel.None);
            options.AddFilter<TProvider>(category, LogLevel.Warning);
        }
    }

    /// <summary>Writes the line let through for one event kind, with the count of those held back since the last.</summary>
    protected abstract void Write(ILogger output, LogLevel level, string category, string eventName, string message, long suppressed, Exception? exception);

    /// <summary>The level an event of <paramref name="level"/> is written at; its own by default.</summary>
    protected virtual LogLevel LevelOf(LogLevel level) => level;

    /// <summary>Whether <paramref name="category"/> has an event below Warning that <see cref="Promoted"/> writes.</summary>
    protected virtual bool PromotesIn(string category) => false;

    /// <summary>The level an event below Warning is written at, if it is written at all: none by default.</summary>
    protected virtual LogLevel? Promoted(string category, EventId eventId) => null;

    private void Write(string category, LogLevel level, EventId eventId, string message, Exception? exception)
    {
        // Resolved on first use: the logger factory builds this provider, so it cannot be injected. The throttle writes the
        // count of a burst's last second on its own once the kind has gone quiet (LogSuppressed), so it needs the logger.
        var output = _output ??= services.GetRequiredService<ILoggerFactory>().CreateLogger(GetType());
        var throttle = Volatile.Read(ref _throttle) ?? Interlocked.CompareExchange(ref _throttle, new LogThrottle(timeProvider, output), null) ?? _throttle;

        // One kind per category and event: YARP's affinity policies share event names (each logs RequestAffinityKeyDecryptionFailed).
        var name = eventId.Name ?? eventId.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        level = LevelOf(level);
        if (throttle.ShouldLog(string.Concat(category, "[", name, "]"), out var suppressed, level))
        {
            Write(output, level, category, name, message, suppressed, exception);
        }
    }

    private sealed class ThrottledLogger(FrameworkLogThrottle owner, string category, bool throttled, bool promotes) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => throttled && logLevel != LogLevel.None && (logLevel >= LogLevel.Warning || promotes);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }

            if (logLevel < LogLevel.Warning)
            {
                if (owner.Promoted(category, eventId) is not { } promoted)
                {
                    return; // the category's other events below Warning: dropped, unformatted
                }

                logLevel = promoted;
            }

            owner.Write(category, logLevel, eventId, formatter(state, exception), exception);
        }
    }
}
