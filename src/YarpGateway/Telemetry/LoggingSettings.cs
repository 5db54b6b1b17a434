using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.Telemetry;

/// <summary>
/// The <c>Logging</c> section, read as the platform reads it: every value under <c>Logging:LogLevel</c> and under
/// <c>Logging:{Provider}:LogLevel</c> is a level's name (or empty), <c>Logging:CaptureScopes</c> is true or false, and
/// the console logger's settings (<c>Logging:Console</c>, its <c>FormatterOptions</c>) bind to their types. Tried: a level
/// that is not one (<c>"Verbose"</c>, as Serilog names it), a <c>QueueFullMode</c> or <c>UseUtcTimestamp</c> that does not
/// convert, a <c>MaxQueueLength</c> of 0, each threw while the host built its logger factory: the gateway ended at start
/// with an unhandled exception and exit 134, and <c>--check</c> called the file valid or ended the same way; brought in
/// by a reload, a bad level was logged nowhere (the file watcher) or as an unexpected failure with its stack (SIGHUP).
/// Now start-up lists each with the other errors, and a reload that brings one in is refused (<see cref="CheckedSectionReload"/>)
/// while the settings in force stay.
/// </summary>
internal static class LoggingSettings
{
    public const string SectionName = "Logging";

    private const string LogLevelKey = "LogLevel";
    private const string CaptureScopesKey = "CaptureScopes";
    private const string ConsoleKey = "Console";
    private const string FormatterOptionsKey = "FormatterOptions";
    private const string FormatterNameKey = "FormatterName";

    /// <summary>The console logger's formats (the gateway's json one keeps the platform's name).</summary>
    private static readonly string[] Formats = [ConsoleFormatterNames.Simple, ConsoleFormatterNames.Json, ConsoleFormatterNames.Systemd];

    /// <summary>Every value of the section the platform would refuse.</summary>
    [DynamicDependency(KeptForReflection.Members, typeof(ConsoleLoggerOptions))]
    [DynamicDependency(KeptForReflection.Members, typeof(ConsoleFormatterOptions))]
    [DynamicDependency(KeptForReflection.Members, typeof(SimpleConsoleFormatterOptions))]
    [DynamicDependency(KeptForReflection.Members, typeof(JsonConsoleFormatterOptions))]
    [DynamicDependency(KeptForReflection.Members, typeof(System.Text.Json.JsonWriterOptions))]
    public static List<ConfigError> Find(IConfiguration configuration)
    {
        var errors = new List<ConfigError>();
        ReadLevels(configuration, errors, rules: null);
        var console = configuration.GetSection(ConfigurationPath.Combine(SectionName, ConsoleKey));
        AddBindingErrors<ConsoleLoggerOptions>(console, errors);

        // A name the console logger does not know falls back to the simple format without a word: a log pipeline that
        // parses json would get plain lines.
        if (console[FormatterNameKey] is { Length: > 0 } format && !Formats.Contains(format, StringComparer.OrdinalIgnoreCase))
        {
            errors.Add(new ConfigError(ConfigurationPath.Combine(console.Path, FormatterNameKey), $"'{format}' is not a console log format: {string.Join(", ", Formats)}."));
        }

        // Every console formatter binds the same FormatterOptions, each to its own type (the systemd one's is their base).
        var formatter = console.GetSection(FormatterOptionsKey);
        AddBindingErrors<SimpleConsoleFormatterOptions>(formatter, errors);
        AddBindingErrors<JsonConsoleFormatterOptions>(formatter, errors);
        return errors;
    }

    /// <summary>
    /// Puts the checks in front of the platform's set-up of the logger and its reload: the options are rebuilt on an edit
    /// only once <see cref="CheckedSectionReload"/> has checked it, and a value that would throw while the host is built is left
    /// out there (start-up then lists it and stops). Call after the host has added its logging (as
    /// <c>WebApplication.CreateBuilder</c> does).
    /// </summary>
    public static void CheckBeforeApplying(IServiceCollection services, IConfiguration configuration)
    {
        services.Decorate<IConfigureOptions<LoggerFilterOptions>>(
            static d => d.ImplementationInstance?.GetType().Name == "LoggerFilterConfigureOptions",
            (_, inner) => new CheckedFilterSetup(inner(), configuration));
        Tolerate<ConsoleLoggerOptions>(services);
        Tolerate<SimpleConsoleFormatterOptions>(services);
        Tolerate<JsonConsoleFormatterOptions>(services);
        Tolerate<ConsoleFormatterOptions>(services);

        CheckedSectionReload.ReplaceChangeSource<LoggerFilterOptions>(services, SectionName, Find);
        CheckedSectionReload.ReplaceChangeSource<ConsoleLoggerOptions>(services, SectionName, Find);
        CheckedSectionReload.ReplaceChangeSource<SimpleConsoleFormatterOptions>(services, SectionName, Find);
        CheckedSectionReload.ReplaceChangeSource<JsonConsoleFormatterOptions>(services, SectionName, Find);
        CheckedSectionReload.ReplaceChangeSource<ConsoleFormatterOptions>(services, SectionName, Find);
    }

    /// <summary>
    /// Walks the levels as the logger filter does: <c>Logging:LogLevel</c>'s values (<c>Default</c> for every category)
    /// and each provider's <c>Logging:{Provider}:LogLevel</c>, nested keys included; the errors, and the rules of the
    /// values that are levels.
    /// </summary>
    private static void ReadLevels(IConfiguration configuration, List<ConfigError> errors, List<LoggerFilterRule>? rules)
    {
        var logging = configuration.GetSection(SectionName);
        if (logging[CaptureScopesKey] is { Length: > 0 } scopes && !bool.TryParse(scopes, out _))
        {
            errors.Add(new ConfigError(ConfigurationPath.Combine(SectionName, CaptureScopesKey), $"'{scopes}' is not true or false."));
        }

        foreach (var child in logging.GetChildren())
        {
            var global = child.Key.Equals(LogLevelKey, StringComparison.OrdinalIgnoreCase);
            var levels = global ? child : child.GetSection(LogLevelKey);
            foreach (var (key, value) in levels.AsEnumerable(makePathsRelative: true))
            {
                if (string.IsNullOrEmpty(value))
                {
                    continue;
                }

                if (!Enum.TryParse<LogLevel>(value, ignoreCase: true, out var level))
                {
                    errors.Add(new ConfigError(ConfigurationPath.Combine(levels.Path, key), $"'{value}' is not a log level: {string.Join(", ", Enum.GetNames<LogLevel>())}."));
                }
                else
                {
                    rules?.Add(new LoggerFilterRule(global ? null : child.Key, key.Equals("Default", StringComparison.OrdinalIgnoreCase) ? null : key, level, filter: null));
                }
            }
        }
    }

    /// <summary>Each value of <paramref name="section"/> that does not convert, or that its setter refuses (a range), by its key.</summary>
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = KeptForReflection.Justification)]
    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = KeptForReflection.Justification)]
    private static void AddBindingErrors<TOptions>(IConfigurationSection section, List<ConfigError> errors)
        where TOptions : class, new()
    {
        var found = OptionsBindingErrors.Find<TOptions>(section, []);
        if (found.Count == 0)
        {
            // One value at a time: a setter's exception does not say which key it was given.
            foreach (var (key, value) in section.AsEnumerable(makePathsRelative: true))
            {
                if (value is null || key.Length == 0)
                {
                    continue;
                }

                try
                {
                    new ConfigurationBuilder().AddInMemoryCollection([new(key, value)]).Build().Bind(new TOptions());
                }
                catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or TargetInvocationException)
                {
                    var reason = (ex is TargetInvocationException { InnerException: { } inner } ? inner : ex).Message;
                    found.Add(new ConfigError(ConfigurationPath.Combine(section.Path, key), $"'{value}' is refused: {reason}"));
                }
            }
        }

        errors.AddRange(found.Where(error => !errors.Any(e => e.Key == error.Key)));
    }

    /// <summary>
    /// The platform's binding of <typeparamref name="TOptions"/>, which keeps what it bound before a value that throws:
    /// only at start (start-up lists the error and stops) or for a file saved again, bad, between a reload's check and the
    /// rebuild; never the host's build ending the process.
    /// </summary>
    private static void Tolerate<TOptions>(IServiceCollection services)
        where TOptions : class
        => services.Decorate<IConfigureOptions<TOptions>>(
            static d => d.ImplementationType is { Name: "ConsoleLoggerConfigureOptions" or "ConsoleFormatterConfigureOptions" },
            static (_, inner) => new TolerantSetup<TOptions>(inner()));

    private sealed class TolerantSetup<TOptions>(IConfigureOptions<TOptions> inner) : IConfigureOptions<TOptions>
        where TOptions : class
    {
        public void Configure(TOptions options)
        {
            try
            {
                inner.Configure(options);
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or TargetInvocationException)
            {
                // LoggingSettings.Find names it: start-up stops on it, and a reload waits for it to be fixed
            }
        }
    }

    /// <summary>
    /// The platform's set-up of the filter, given only a section it can read. Otherwise (a file saved again, bad, between
    /// a reload's check and this build) the last levels it applied; or, at start, before start-up lists the error and
    /// stops, the values that are levels, so that what is logged until then is what the operator asked for.
    /// </summary>
    private sealed class CheckedFilterSetup(IConfigureOptions<LoggerFilterOptions> inner, IConfiguration configuration) : IConfigureOptions<LoggerFilterOptions>
    {
        private (LogLevel MinLevel, bool CaptureScopes, LoggerFilterRule[] Rules)? _lastGood;

        public void Configure(LoggerFilterOptions options)
        {
            var errors = new List<ConfigError>();
            var rules = new List<LoggerFilterRule>();
            ReadLevels(configuration, errors, rules);
            if (errors.Count == 0)
            {
                var before = options.Rules.Count;
                inner.Configure(options);
                _lastGood = (options.MinLevel, options.CaptureScopes, options.Rules.Skip(before).ToArray());
                return;
            }

            if (_lastGood is { } last)
            {
                options.MinLevel = last.MinLevel;
                options.CaptureScopes = last.CaptureScopes;
                rules = [.. last.Rules];
            }

            foreach (var rule in rules)
            {
                options.Rules.Add(rule);
            }
        }
    }
}
