using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace YarpGateway.Configuration;

/// <summary>
/// Applies an edit of a section the platform reads and reloads itself (<c>Logging</c>, <c>AllowedHosts</c>), as it does,
/// but only once the edit is checked: the options built from the section are told of a change (this replaces the source
/// that told them of every configuration reload; <see cref="ReplaceChangeSource{TOptions}"/>) after the edit checks out,
/// which is logged with what changed; a bad edit is logged once, with the file that set each value, and counted as
/// rejected, and the settings in force stay. Start-up runs the same check (<see cref="StartupChecks"/>).
/// The logger factory depends on this (through the log filter's options), so the logger and the metrics are resolved
/// when first needed, never while the factory is being built.
/// </summary>
internal sealed partial class CheckedSectionReload : IDisposable
{
    private readonly IConfiguration _configuration;
    private readonly IServiceProvider _services;
    private readonly string _section;
    private readonly Func<IConfiguration, List<ConfigError>> _find;
    private readonly IDisposable _subscription;
    private readonly Lock _gate = new();
    private CancellationTokenSource _changed = new();
    private string _appliedSnapshot;
    private IReadOnlyDictionary<string, string> _appliedKeys;
    private string? _lastRejection;

    public CheckedSectionReload(IConfiguration configuration, IServiceProvider services, string section, Func<IConfiguration, List<ConfigError>> find)
    {
        _configuration = configuration;
        _services = services;
        _section = section;
        _find = find;
        _appliedSnapshot = ConfigChanges.Snapshot(configuration, section);
        _appliedKeys = Capture();
        _subscription = ChangeToken.OnChange(configuration.GetReloadToken, Reload);
    }

    /// <summary>
    /// This reload of <paramref name="section"/>, checked by <paramref name="find"/>, in place of the sources that tell
    /// <typeparamref name="TOptions"/> of every configuration reload (the platform's <c>ConfigurationChangeTokenSource</c>
    /// and those derived from it); other sources stay (the event-source logger's, for the filters a trace session asks for).
    /// </summary>
    public static void ReplaceChangeSource<TOptions>(IServiceCollection services, string section, Func<IConfiguration, List<ConfigError>> find)
    {
        for (var i = services.Count - 1; i >= 0; i--)
        {
            if (services[i] is { IsKeyedService: false } d && d.ServiceType == typeof(IOptionsChangeTokenSource<TOptions>)
                && typeof(ConfigurationChangeTokenSource<TOptions>).IsAssignableFrom(d.ImplementationInstance?.GetType() ?? d.ImplementationType))
            {
                services.RemoveAt(i);
            }
        }

        if (!services.Any(d => d.IsKeyedService && d.ServiceType == typeof(CheckedSectionReload) && Equals(d.ServiceKey, section)))
        {
            services.AddKeyedSingleton(section, (sp, _) => new CheckedSectionReload(sp.GetRequiredService<IConfiguration>(), sp, section, find));
        }

        services.AddSingleton<IOptionsChangeTokenSource<TOptions>>(sp => new ChangeSource<TOptions>(sp.GetRequiredKeyedService<CheckedSectionReload>(section)));
    }

    private CancellationChangeToken GetChangeToken() => new CancellationChangeToken(Volatile.Read(ref _changed).Token);

    private void Reload()
    {
        CancellationTokenSource fired;
        lock (_gate)
        {
            var snapshot = ConfigChanges.Snapshot(_configuration, _section);
            if (snapshot == _appliedSnapshot)
            {
                _lastRejection = null; // a bad edit put back: the same bad edit again is said again
                return;
            }

            if (ConfigSourceLocator.FindBrokenFiles(_configuration).Count > 0)
            {
                return; // kept until it is fixed; the proxy configuration's rejection says which file
            }

            var logger = _services.GetRequiredService<ILogger<CheckedSectionReload>>();
            var metrics = _services.GetRequiredService<ConfigMetrics>();
            var errors = _find(_configuration);
            if (errors.Count > 0)
            {
                var rejection = string.Join(" ", ConfigSourceLocator.WithFiles(_configuration, errors));
                if (rejection != _lastRejection)
                {
                    _lastRejection = rejection;
                    metrics.Reloaded(applied: false);
                    Log.Rejected(logger, _section, rejection);
                }

                return;
            }

            var keys = Capture();
            if (ConfigChanges.Snapshot(_configuration, _section) != snapshot)
            {
                return; // a file was read again meanwhile: its reload waits for the gate and reads it all
            }

            var changes = ConfigChanges.Describe(_appliedKeys, keys, ConfigChanges.ValuesExceptSecrets);
            _lastRejection = null;
            _appliedSnapshot = snapshot;
            _appliedKeys = keys;
            metrics.Reloaded(applied: true);
            Log.Applied(logger, _section, changes.Length > 0 ? changes : ConfigChanges.OnlyCase); // with the settings before the edit
            fired = _changed;
            Volatile.Write(ref _changed, new CancellationTokenSource());
        }

        // The options are built again, from the section just checked. Not disposed: a GetChangeToken that read it before
        // the swap may still ask for its token (it holds no timer).
        fired.Cancel();
    }

    /// <summary>The section's keys, relative to it; a setting that is one value (<c>AllowedHosts</c>) by its own name.</summary>
    private IReadOnlyDictionary<string, string> Capture()
        => _configuration[_section] is { } value
            ? new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase) { [_section] = value }
            : ConfigChanges.Capture(_configuration, _section);

    public void Dispose()
    {
        _subscription.Dispose();
        _changed.Dispose();
    }

    private sealed class ChangeSource<TOptions>(CheckedSectionReload reload) : IOptionsChangeTokenSource<TOptions>
    {
        public string Name => Options.DefaultName;

        public IChangeToken GetChangeToken() => reload.GetChangeToken();
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "{Section} reloaded: in force from the next request or line logged. Changed: {Changes}.", EventName = "SectionReloaded")]
        public static partial void Applied(ILogger logger, string section, string changes);

        [LoggerMessage(2, LogLevel.Error, "{Section} reload rejected; the previous settings stay in force. {Errors}", EventName = "SectionReloadRejected")]
        public static partial void Rejected(ILogger logger, string section, string errors);
    }
}
