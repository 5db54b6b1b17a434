namespace YarpGateway.Tests.Functional;

/// <summary>Hands every log line to <c>observe</c> as it is written ("[EventName] message"): for what was in force at that moment.</summary>
internal sealed class ObservingLoggerProvider(Action<string> observe) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new Logger(observe);

    public void Dispose()
    {
    }

    private sealed class Logger(Action<string> observe) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => observe($"[{eventId.Name}] {formatter(state, exception)}");
    }
}
