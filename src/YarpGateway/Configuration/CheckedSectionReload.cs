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
    private readonly CheckedEdits _edits;
    private readonly IDisposable _subscription;
    private readonly Lock _gate = new();
    private readonly CheckedChangeToken _changed = new();

    public CheckedSectionReload(IConfiguration configuration, IServiceProvider services, string section, Func<IConfiguration, List<ConfigError>> find)
    {
        _configuration = configuration;
        _services = services;
        _section = section;
        _find = find;
        _edits = new CheckedEdits(configuration, section, ConfigChanges.ValuesExceptSecrets);
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

    private void Reload()
    {
        CancellationTokenSource fired;
        lock (_gate)
        {
            var outcome = _edits.Check(() => _find(_configuration));
            if (outcome is { Rejection: null, Changes: null })
            {
                return;
            }

            var logger = _services.GetRequiredService<ILogger<CheckedSectionReload>>();
            var metrics = _services.GetRequiredService<ConfigMetrics>();
            if (outcome.Rejection is { } rejection)
            {
                Log.Rejected(logger, _section, rejection);
                metrics.Reloaded(applied: false); // after the line: whoever sees the count finds it
                return;
            }

            Log.Applied(logger, _section, outcome.Changes!); // with the settings before the edit
            metrics.Reloaded(applied: true);
            fired = _changed.Renew();
        }

        // The options are built again, from the section just checked. A failure is not known to happen (the logging
        // options' set-up keeps what binds).
        if (CheckedChangeToken.Fire(fired) is { } failure)
        {
            Log.BuildFailed(_services.GetRequiredService<ILogger<CheckedSectionReload>>(), _section, failure);
        }
    }

    public void Dispose()
    {
        _subscription.Dispose();
        _changed.Dispose();
    }

    private sealed class ChangeSource<TOptions>(CheckedSectionReload reload) : IOptionsChangeTokenSource<TOptions>
    {
        public string Name => Options.DefaultName;

        public IChangeToken GetChangeToken() => reload._changed.Get();
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "{Section} reloaded: in force from the next request or line logged. Changed: {Changes}.", EventName = "SectionReloaded")]
        public static partial void Applied(ILogger logger, string section, string changes);

        [LoggerMessage(2, LogLevel.Error, "{Section} reload rejected; the previous settings stay in force. {Errors}", EventName = "SectionReloadRejected")]
        public static partial void Rejected(ILogger logger, string section, string errors);

        [LoggerMessage(3, LogLevel.Error, "{Section} was checked, and its settings could not be built: {Error}", EventName = "SectionReloadFailed")]
        public static partial void BuildFailed(ILogger logger, string section, string error);
    }
}
