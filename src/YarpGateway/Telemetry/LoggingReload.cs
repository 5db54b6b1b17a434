using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using YarpGateway.Configuration;

namespace YarpGateway.Telemetry;

/// <summary>
/// Applies an edit of the <c>Logging</c> section without a restart, as the platform does, but only once it is checked
/// (<see cref="LoggingSettings.Find"/>): the logger filter and the console logger's options are told of a change (this
/// is their only change-token source) after the edit checks out, which is logged with what changed; a bad edit is logged
/// once, with the file that set each value, and counted as rejected, and the settings in force stay.
/// The logger factory depends on this (through the filter's options), so the logger and the metrics are resolved when
/// first needed, never while the factory is being built.
/// </summary>
internal sealed partial class LoggingReload
    : IOptionsChangeTokenSource<LoggerFilterOptions>, IOptionsChangeTokenSource<ConsoleLoggerOptions>, IOptionsChangeTokenSource<ConsoleFormatterOptions>,
        IOptionsChangeTokenSource<SimpleConsoleFormatterOptions>, IOptionsChangeTokenSource<JsonConsoleFormatterOptions>, IDisposable
{
    private readonly IConfiguration _configuration;
    private readonly IServiceProvider _services;
    private readonly IDisposable _subscription;
    private readonly Lock _gate = new();
    private CancellationTokenSource _changed = new();
    private string _appliedSnapshot;
    private IReadOnlyDictionary<string, string> _appliedKeys;
    private string? _lastRejection;

    public LoggingReload(IConfiguration configuration, IServiceProvider services)
    {
        _configuration = configuration;
        _services = services;
        _appliedSnapshot = ConfigChanges.Snapshot(configuration, LoggingSettings.SectionName);
        _appliedKeys = ConfigChanges.Capture(configuration, LoggingSettings.SectionName);
        _subscription = ChangeToken.OnChange(configuration.GetReloadToken, Reload);
    }

    public string Name => Options.DefaultName;

    public IChangeToken GetChangeToken() => new CancellationChangeToken(Volatile.Read(ref _changed).Token);

    private void Reload()
    {
        CancellationTokenSource fired;
        lock (_gate)
        {
            var snapshot = ConfigChanges.Snapshot(_configuration, LoggingSettings.SectionName);
            if (snapshot == _appliedSnapshot)
            {
                _lastRejection = null; // a bad edit put back: the same bad edit again is said again
                return;
            }

            if (ConfigSourceLocator.FindBrokenFiles(_configuration).Count > 0)
            {
                return; // kept until it is fixed; the proxy configuration's rejection says which file
            }

            var logger = _services.GetRequiredService<ILogger<LoggingReload>>();
            var metrics = _services.GetRequiredService<ConfigMetrics>();
            var errors = LoggingSettings.Find(_configuration);
            if (errors.Count > 0)
            {
                var rejection = string.Join(" ", ConfigSourceLocator.WithFiles(_configuration, errors));
                if (rejection != _lastRejection)
                {
                    _lastRejection = rejection;
                    metrics.Reloaded(applied: false);
                    Log.Rejected(logger, LoggingSettings.SectionName, rejection);
                }

                return;
            }

            if (ConfigChanges.CaptureIfUnchanged(_configuration, LoggingSettings.SectionName, snapshot) is not { } keys)
            {
                return; // a file was read again meanwhile: its reload waits for the gate and reads it all
            }

            var changes = ConfigChanges.Describe(_appliedKeys, keys, ConfigChanges.ValuesExceptSecrets);
            _lastRejection = null;
            _appliedSnapshot = snapshot;
            _appliedKeys = keys;
            metrics.Reloaded(applied: true);
            Log.Applied(logger, LoggingSettings.SectionName, changes.Length > 0 ? changes : ConfigChanges.OnlyCase); // with the levels before the edit
            fired = _changed;
            Volatile.Write(ref _changed, new CancellationTokenSource());
        }

        // The logger factory builds its filter again, and the console logger its options, from the section just checked. Not disposed: a GetChangeToken that
        // read it before the swap may still ask for its token (it holds no timer).
        fired.Cancel();
    }

    public void Dispose()
    {
        _subscription.Dispose();
        _changed.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "{Section} reloaded: in force from the next line logged. Changed: {Changes}.", EventName = "LoggingReloaded")]
        public static partial void Applied(ILogger logger, string section, string changes);

        [LoggerMessage(2, LogLevel.Error, "{Section} reload rejected; the previous logging settings stay in force. {Errors}", EventName = "LoggingReloadRejected")]
        public static partial void Rejected(ILogger logger, string section, string errors);
    }
}
