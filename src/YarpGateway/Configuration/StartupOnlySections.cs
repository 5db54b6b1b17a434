using Microsoft.Extensions.Primitives;

namespace YarpGateway.Configuration;

/// <summary>
/// Sections and keys the gateway reads once, at start-up: the route policies, whether there is a bearer
/// scheme (and the rest of <c>Authentication</c>), Kestrel's endpoints and limits, the socket transport, and
/// the settings of reloadable sections that Kestrel or the meter provider takes at start. A reload
/// that changes one is not applied; it is logged once per change, so that an operator who edited it
/// knows a restart is what applies it, or, when start-up would refuse the new values, that a restart would fail and why. Of <c>Gateway:Cors</c>, whether it has any policy; of <c>Gateway:OutputCache</c>,
/// which policies exist and its sizes; of <c>Gateway:RateLimiting</c>, which policies exist and how each is partitioned
/// (the rest of these reloads); the bearer scheme's settings reload (<see cref="Security.BearerOptionsReload"/>).
/// </summary>
internal sealed partial class StartupOnlySections : IDisposable
{
    private static readonly string[] Sections =
    [
        "Gateway:Authorization",
        "Gateway:ProxyProtocol",
        "Gateway:RequestFiltering",
        "Kestrel",
        "Gateway:Transport",
        "Gateway:Http2",
        "Gateway:DemoBackends",
        "Gateway:Admission:MaxConcurrentConnections",
        "Gateway:Admission:MaxConcurrentUpgradedConnections",
        "Gateway:Admission:Connections:MaxOpen",
        "Gateway:Telemetry:ThrottleKestrelLogs",
        "Gateway:Telemetry:PerRequestGauges",
        "Gateway:Telemetry:PlatformRequestDurations",
        "Gateway:Telemetry:MaxSeriesPerMetric",
        "Gateway:Telemetry:Otlp",
    ];

    /// <summary>
    /// What is read at start-up, and how to read it: its name in the log line, the section it is part of (whose
    /// start-up errors concern it), its snapshot (equal strings, nothing changed; a key's own value included) and its
    /// keys relative to the section (for the log line).
    /// </summary>
    private static readonly Part[] Parts =
    [
        .. Sections.Select(section => new Part(section, section, c => ConfigChanges.Snapshot(c, section), c => ConfigChanges.Capture(c, section))),
        PartOf(Cors.CorsRule.ReadAtStartPart, Cors.GatewayCorsOptions.SectionName, Cors.CorsRule.ReadAtStart),
        PartOf(OutputCaching.OutputCachePolicies.ReadAtStartPart, OutputCaching.GatewayOutputCacheOptions.SectionName, OutputCaching.OutputCachePolicies.ReadAtStart),
        PartOf(RateLimiting.RateLimitPolicyKeys.ReadAtStartPart, RateLimiting.GatewayRateLimitingOptions.SectionName, RateLimiting.RateLimitPolicyKeys.ReadAtStart),
        PartOf(Security.BearerOptionsReload.ReadAtStartPart, Security.BearerOptionsReload.SectionName, Security.BearerOptionsReload.ReadAtStart),
    ];

    private sealed record Part(string Name, string Section, Func<IConfiguration, string> Snapshot, Func<IConfiguration, IReadOnlyDictionary<string, string>> Capture);

    /// <summary>The keys of a section a feature reads at start-up, as that feature captures them; its snapshot is of those keys.</summary>
    private static Part PartOf(string name, string section, Func<IConfiguration, IReadOnlyDictionary<string, string>> capture)
        => new(name, section, c => ConfigChanges.Snapshot(capture(c)), capture);

    private readonly IConfiguration _configuration;
    private readonly Func<List<ConfigError>> _startupChecks;
    private readonly ILogger<StartupOnlySections> _logger;
    private readonly Dictionary<string, string> _started;
    private readonly Dictionary<string, string> _reported;
    private readonly Dictionary<string, IReadOnlyDictionary<string, string>> _reportedKeys;
    private readonly IDisposable _subscription;
    private readonly Lock _gate = new();

    /// <param name="startupChecks">What start-up would refuse in the configuration as it is now (<see cref="StartupChecks.Find"/>).</param>
    public StartupOnlySections(IConfiguration configuration, Func<List<ConfigError>> startupChecks, ILogger<StartupOnlySections> logger)
    {
        _configuration = configuration;
        _startupChecks = startupChecks;
        _logger = logger;
        _started = Parts.ToDictionary(p => p.Name, p => p.Snapshot(configuration), StringComparer.Ordinal);
        _reportedKeys = Parts.ToDictionary(p => p.Name, p => p.Capture(configuration), StringComparer.Ordinal);
        _reported = new Dictionary<string, string>(_started, StringComparer.Ordinal);
        _subscription = ChangeToken.OnChange(configuration.GetReloadToken, Check);
    }

    private void Check()
    {
        lock (_gate)
        {
            if (ConfigSourceLocator.FindBrokenFiles(_configuration).Count > 0)
            {
                return; // a broken file is not an edit of these sections (the proxy configuration's rejection says which file)
            }

            List<ConfigError>? startupErrors = null; // what start-up would refuse: found once per reload, on the first part that changed
            foreach (var part in Parts)
            {
                var now = part.Snapshot(_configuration);
                if (now == _reported[part.Name])
                {
                    continue;
                }

                var keys = part.Capture(_configuration);
                if (part.Snapshot(_configuration) != now)
                {
                    return; // a file was read again meanwhile: its reload waits for the gate and reads it all
                }

                // Values as a live section's reload shows them (not a password's), but key names only for the
                // authentication section: a signing key's value is under a key named Value.
                var changes = ConfigChanges.Describe(_reportedKeys[part.Name], keys, ShowsValues(part.Section));
                _reported[part.Name] = now;
                _reportedKeys[part.Name] = keys;
                if (now == _started[part.Name])
                {
                    Log.Restored(_logger, part.Name);
                    continue;
                }

                startupErrors ??= _startupChecks();
                if (ErrorsUnder(part.Section, startupErrors) is { Length: > 0 } errors)
                {
                    // "A restart applies the change" would send the operator into a rolling restart whose new pods
                    // exit at once: say now what the start-up check will say then.
                    Log.RestartWouldFail(_logger, part.Name, changes.Length > 0 ? changes : part.Name, errors);
                }
                else
                {
                    Log.NeedsRestart(_logger, part.Name, changes.Length > 0 ? changes : part.Name);
                }
            }
        }
    }

    private static Func<string, bool> ShowsValues(string section)
        => section.Equals(Security.BearerOptionsReload.SectionName, StringComparison.OrdinalIgnoreCase) ? ConfigChanges.NoValues : ConfigChanges.ValuesExceptSecrets;

    /// <summary>The errors under <paramref name="section"/>, with the file that set each, as one line; empty when none.</summary>
    private string ErrorsUnder(string section, List<ConfigError> startupErrors)
    {
        var errors = startupErrors.Where(e => e.Key.Equals(section, StringComparison.OrdinalIgnoreCase)
            || e.Key.StartsWith(section + ":", StringComparison.OrdinalIgnoreCase)).ToList();
        return string.Join(" ", ConfigSourceLocator.WithFiles(_configuration, errors).Select(e => e.ToString()));
    }

    public void Dispose() => _subscription.Dispose();

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "{Section} changed, and is read at start-up only: the gateway keeps the values it started with until it restarts (a rolling restart applies the change). Changed: {Changes}.", EventName = "SectionNeedsRestart")]
        public static partial void NeedsRestart(ILogger logger, string section, string changes);

        [LoggerMessage(2, LogLevel.Information, "{Section} is back to the values the gateway started with.", EventName = "SectionRestored")]
        public static partial void Restored(ILogger logger, string section);

        [LoggerMessage(3, LogLevel.Error, "{Section} changed, and is read at start-up only: the gateway keeps the values it started with, and would not start with the new ones (fix them before a restart). Changed: {Changes}. {Errors}", EventName = "SectionChangeWouldFailRestart")]
        public static partial void RestartWouldFail(ILogger logger, string section, string changes, string errors);
    }
}
