namespace YarpGateway.Telemetry;

/// <summary>
/// A logger provider for a framework's categories whose events come once per connection, stream or
/// request, which a hostile client or an outage makes by the thousand: it re-logs each event kind at
/// most once a second, with the count of the rest, under the subclass's own category. The subclass's
/// filter setup (<see cref="Apply{TProvider}"/>) sets every other provider's level for those
/// categories to None, and this one's to Warning; below Warning their events are dropped.
/// </summary>
internal abstract class FrameworkLogThrottle(IServiceProvider services, TimeProvider timeProvider, string[] categories) : ILoggerProvider
{
    private readonly LogThrottle _throttle = new(timeProvider);
    private ILogger? _output;

    public ILogger CreateLogger(string categoryName)
        => new ThrottledLogger(this, categoryName, Array.Exists(categories, c => categoryName == c || categoryName.StartsWith(c + ".", StringComparison.Ordinal)));

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

    private void Write(string category, LogLevel level, EventId eventId, string message, Exception? exception)
    {
        // One kind per category and event: YARP's affinity policies share event names (each logs RequestAffinityKeyDecryptionFailed).
        var name = eventId.Name ?? eventId.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (!_throttle.ShouldLog(string.Concat(category, "[", name, "]"), out var suppressed))
        {
            return;
        }

        // Resolved on first use: the logger factory builds this provider, so it cannot be injected.
        var output = _output ??= services.GetRequiredService<ILoggerFactory>().CreateLogger(GetType());
        Write(output, level, category, name, message, suppressed, exception);
    }

    private sealed class ThrottledLogger(FrameworkLogThrottle owner, string category, bool throttled) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => throttled && logLevel >= LogLevel.Warning && logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                owner.Write(category, logLevel, eventId, formatter(state, exception), exception);
            }
        }
    }
}
