namespace YarpGateway.Tests.Functional;

/// <summary>
/// Reads a value (<c>read</c>) each time a line of one event (<c>eventName</c>) is written, into <see cref="Seen"/>: what
/// was in force at the moment the line said so.
/// </summary>
internal sealed class ObservingLoggerProvider(string eventName, Func<int> read) : ILoggerProvider
{
    private readonly string _eventName = eventName;
    private readonly Func<int> _read = read;
    private readonly List<int> _seen = [];

    public IReadOnlyList<int> Seen
    {
        get
        {
            lock (_seen)
            {
                return [.. _seen];
            }
        }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void Dispose()
    {
    }

    private sealed class Logger(ObservingLoggerProvider provider) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (eventId.Name == provider._eventName)
            {
                lock (provider._seen)
                {
                    provider._seen.Add(provider._read());
                }
            }
        }
    }
}
