using Microsoft.Extensions.Primitives;

namespace YarpGateway.Configuration;

/// <summary>
/// Sections and keys the gateway reads once, at start-up: the route policies and the authentication
/// scheme (which ASP.NET Core builds once), Kestrel's endpoints and limits, the socket transport, and
/// the settings of reloadable sections that Kestrel or the meter provider takes at start. A reload
/// that changes one is not applied; it is logged once per change, so that an operator who edited it
/// knows a restart is what applies it.
/// </summary>
internal sealed partial class StartupOnlySections : IDisposable
{
    public static readonly string[] Sections =
    [
        "Authentication",
        "Gateway:Authorization",
        "Gateway:Cors",
        "Gateway:RateLimiting",
        "Gateway:OutputCache",
        "Gateway:ForwardedHeaders",
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
        "Gateway:Telemetry:MaxSeriesPerMetric",
        "Gateway:Telemetry:Otlp",
    ];

    private readonly IConfiguration _configuration;
    private readonly ILogger<StartupOnlySections> _logger;
    private readonly Dictionary<string, string> _started;
    private readonly Dictionary<string, string> _reported;
    private readonly Dictionary<string, IReadOnlyDictionary<string, string>> _reportedKeys;
    private readonly IDisposable _subscription;
    private readonly Lock _gate = new();

    public StartupOnlySections(IConfiguration configuration, ILogger<StartupOnlySections> logger)
    {
        _configuration = configuration;
        _logger = logger;
        _started = Sections.ToDictionary(s => s, Snapshot, StringComparer.Ordinal);
        _reported = new Dictionary<string, string>(_started, StringComparer.Ordinal);
        _reportedKeys = Sections.ToDictionary(s => s, s => ConfigChanges.Capture(configuration, s), StringComparer.Ordinal);
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

            foreach (var section in Sections)
            {
                var now = Snapshot(section);
                if (now == _reported[section])
                {
                    continue;
                }

                // Key names only: the authentication section holds signing keys.
                if (ConfigChanges.CaptureIfUnchanged(_configuration, section, now) is not { } keys)
                {
                    return; // a file was read again meanwhile: its reload waits for the gate and reads it all
                }

                var changes = ConfigChanges.Describe(_reportedKeys[section], keys, ConfigChanges.NoValues);
                _reported[section] = now;
                _reportedKeys[section] = keys;
                if (now == _started[section])
                {
                    Log.Restored(_logger, section);
                }
                else
                {
                    Log.NeedsRestart(_logger, section, changes.Length > 0 ? changes : section);
                }
            }
        }
    }

    private string Snapshot(string section) => ConfigChanges.Snapshot(_configuration, section);

    public void Dispose() => _subscription.Dispose();

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "{Section} changed, and is read at start-up only: the gateway keeps the values it started with until it restarts (a rolling restart applies the change). Changed: {Changes}.", EventName = "SectionNeedsRestart")]
        public static partial void NeedsRestart(ILogger logger, string section, string changes);

        [LoggerMessage(2, LogLevel.Information, "{Section} is back to the values the gateway started with.", EventName = "SectionRestored")]
        public static partial void Restored(ILogger logger, string section);
    }
}
