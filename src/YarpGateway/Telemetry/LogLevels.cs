using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.Telemetry;

/// <summary>
/// The <c>Logging</c> section's levels, read as the platform's logger filter reads them: every value under
/// <c>Logging:LogLevel</c> and under <c>Logging:{Provider}:LogLevel</c> is a level's name (or empty), and
/// <c>Logging:CaptureScopes</c> is true or false. Tried: a level that is not one (<c>"Verbose"</c>, as Serilog names it)
/// threw from the logger factory's construction, and the gateway ended at start with an unhandled exception and exit 134
/// while <c>--check</c> called the file valid; brought in by a reload, it was logged nowhere (the file watcher) or as an
/// unexpected failure with its stack (SIGHUP). Now start-up lists it with the other errors, and a reload that brings one
/// in is refused (<see cref="LogLevelsReload"/>) while the levels in force stay.
/// </summary>
internal static class LogLevels
{
    public const string SectionName = "Logging";

    private const string LogLevelKey = "LogLevel";
    private const string CaptureScopesKey = "CaptureScopes";

    /// <summary>Every value of the section the logger filter would refuse.</summary>
    public static List<ConfigError> Find(IConfiguration configuration)
    {
        var errors = new List<ConfigError>();
        Read(configuration, errors, rules: null);
        return errors;
    }

    /// <summary>
    /// Walks the section as the logger filter does: <c>Logging:LogLevel</c>'s values (<c>Default</c> for every category)
    /// and each provider's <c>Logging:{Provider}:LogLevel</c>, nested keys included; the errors, and the rules of the
    /// values that are levels.
    /// </summary>
    private static void Read(IConfiguration configuration, List<ConfigError> errors, List<LoggerFilterRule>? rules)
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

    /// <summary>
    /// Puts the checks in front of the platform's filter set-up and its reload: the filter is built from the section only
    /// when <see cref="Find"/> has nothing to say, and rebuilt on an edit only once <see cref="LogLevelsReload"/> has
    /// checked it. Call after the host has added its configuration to logging (as <c>WebApplication.CreateBuilder</c> does).
    /// </summary>
    public static void CheckBeforeApplying(IServiceCollection services, IConfiguration configuration)
    {
        services.Decorate<IConfigureOptions<LoggerFilterOptions>>(
            static d => d.ImplementationInstance?.GetType().Name == "LoggerFilterConfigureOptions",
            (_, inner) => new CheckedFilterSetup(inner(), configuration));
        services.RemoveAll<IOptionsChangeTokenSource<LoggerFilterOptions>>();
        services.AddSingleton<LogLevelsReload>();
        services.AddSingleton<IOptionsChangeTokenSource<LoggerFilterOptions>>(static sp => sp.GetRequiredService<LogLevelsReload>());
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
            if (Find(configuration).Count == 0)
            {
                var before = options.Rules.Count;
                inner.Configure(options);
                _lastGood = (options.MinLevel, options.CaptureScopes, options.Rules.Skip(before).ToArray());
            }
            else if (_lastGood is { } last)
            {
                options.MinLevel = last.MinLevel;
                options.CaptureScopes = last.CaptureScopes;
                foreach (var rule in last.Rules)
                {
                    options.Rules.Add(rule);
                }
            }
            else
            {
                var rules = new List<LoggerFilterRule>();
                Read(configuration, [], rules);
                foreach (var rule in rules)
                {
                    options.Rules.Add(rule);
                }
            }
        }
    }
}
