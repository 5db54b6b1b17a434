using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace YarpGateway.Configuration;

/// <summary>
/// A <c>Gateway:*</c> options section that is re-read on every configuration reload and applied
/// only if it binds and validates; otherwise the last good value stays in force and the problem is
/// logged once and counted in <c>gateway.config.reloads{result="rejected"}</c>.
/// Read <see cref="Current"/> on the request path, never <see cref="IOptionsMonitor{TOptions}.CurrentValue"/>:
/// after an invalid edit the monitor throws on every read. A section that a reload applies only in part says which keys
/// it applies (<see cref="AppliedKeys"/>): a reload is then logged and counted, and <see cref="Changed"/> raised, only
/// when one of them changed.
/// </summary>
internal sealed partial class ReloadableOptions<TOptions> : IDisposable
    where TOptions : class, new()
{
    private readonly IOptionsFactory<TOptions> _factory;
    private readonly IConfiguration _configuration;
    private readonly ConfigMetrics _metrics;
    private readonly ILogger _logger;
    private readonly string _section;
    private readonly AppliedKeys? _appliedKeysOf;
    private readonly IDisposable _subscription;
    private readonly Lock _gate = new();
    private volatile TOptions _current;
    private string _appliedSnapshot;
    private IReadOnlyDictionary<string, string> _appliedKeys;
    private string? _lastRejection;

    public ReloadableOptions(IOptionsFactory<TOptions> factory, IConfiguration configuration, ConfigMetrics metrics, ILoggerFactory loggerFactory, string section, AppliedKeys? appliedKeys = null)
    {
        _appliedKeysOf = appliedKeys;
        _factory = factory;
        _configuration = configuration;
        _metrics = metrics;
        _logger = loggerFactory.CreateLogger("YarpGateway.Configuration.ReloadableOptions");
        _section = section;
        _current = CreateOrDefault(factory);
        _appliedSnapshot = Snapshot();
        _appliedKeys = AppliedOf(ConfigChanges.Capture(configuration, section), applied: null);
        _subscription = ChangeToken.OnChange(configuration.GetReloadToken, Reload);
    }

    /// <summary>The last value that bound and validated.</summary>
    public TOptions Current => _current;

    /// <summary>
    /// Raised after a new valid value replaced <see cref="Current"/>, and before the reload is logged and counted: once the
    /// line says a reload applied, what the handlers derive from it is in force.
    /// </summary>
    public event Action<TOptions>? Changed;

    private void Reload()
    {
        // Reload runs once at a time: ChangeToken.OnChange waits for a callback to return before it registers for the next change.
        string changes;
        TOptions applied;
        lock (_gate)
        {
            var snapshot = Snapshot();
            if (snapshot == _appliedSnapshot)
            {
                _lastRejection = null; // a bad edit put back: the same bad edit again is said again
                return;
            }

            // A file that no longer parses, or a required one that went, contributes nothing: what
            // it set would fall back to the appsettings defaults. Kept until it is fixed; the proxy
            // configuration's rejection says which file and why.
            if (ConfigSourceLocator.FindBrokenFiles(_configuration).Count > 0)
            {
                return;
            }

            TOptions? next = null;
            IEnumerable<ConfigError> refused;
            try
            {
                // A value that does not convert inside a map or a list (a policy's "Credentials": "maybe", a status
                // code "abc") makes the binder drop that entry without a word, and a policy would be gone: every such
                // value is an error, as at start.
                refused = OptionsBindingErrors.Find<TOptions>(_configuration.GetSection(_section), []);
                if (!refused.Any())
                {
                    next = _factory.Create(Options.DefaultName); // not the monitor: its cache may not have seen the reload yet
                }
            }
            catch (OptionsValidationException ex)
            {
                refused = ex.Failures.Select(failure => ConfigError.FromFailure(_section, failure));
            }
            catch (InvalidOperationException ex)
            {
                refused = [new ConfigError(_section, ex.Message)];
            }

            if (next is null)
            {
                // With the file that set each value, as start-up and a start-up-only section's edit name it: with the
                // appsettings files, --config and the environment layered, the key alone does not say where to fix it.
                var errors = string.Join(" ", ConfigSourceLocator.WithFiles(_configuration, refused));
                if (errors != _lastRejection)
                {
                    _lastRejection = errors;
                    Log.Rejected(_logger, _section, errors);
                    _metrics.Reloaded(applied: false); // after the line: whoever sees the count finds it
                }

                return;
            }

            if (ConfigChanges.CaptureIfUnchanged(_configuration, _section, snapshot) is not { } keys)
            {
                return; // a file was read again meanwhile: its reload waits for the gate and reads it all
            }

            _lastRejection = null;
            var appliedKeys = AppliedOf(keys, _appliedKeys);
            changes = ConfigChanges.Describe(_appliedKeys, appliedKeys, ConfigChanges.ValuesExceptSecrets);
            var appliesAny = ConfigChanges.Snapshot(appliedKeys) != ConfigChanges.Snapshot(_appliedKeys);
            _appliedSnapshot = snapshot;
            _appliedKeys = appliedKeys;
            _current = next;
            if (!appliesAny)
            {
                return; // only what is read at start-up changed (StartupOnlySections says so)
            }

            applied = next;
        }

        // The handlers first (outside the gate, as always), then the line: a test or an operator who reads "reloaded" and
        // sends a request at once met the old rate limits, CORS origins or cache durations for a few milliseconds before.
        RaiseChanged(applied);
        Log.Applied(_logger, _section, changes.Length > 0 ? changes : ConfigChanges.OnlyCase);
        _metrics.Reloaded(applied: true);
    }

    /// <summary>
    /// Each handler on its own: one that throws is logged and the others still run. The reload runs on the thread that saw
    /// the file change (a timer's, a watcher's), where an exception would end the process: one bad handler would take every
    /// pod down at the same edit, as a ConfigMap reaches them all.
    /// </summary>
    private void RaiseChanged(TOptions applied)
    {
        if (Changed is not { } handlers)
        {
            return;
        }

        foreach (var handler in handlers.GetInvocationList())
        {
            try
            {
                ((Action<TOptions>)handler)(applied);
            }
            catch (Exception ex)
            {
                Log.HandlerFailed(_logger, _section, OwnerOf(handler), ex);
            }
        }
    }

    /// <summary>The class a handler belongs to (a lambda's enclosing class, not the compiler's closure class).</summary>
    private static string OwnerOf(Delegate handler)
    {
        var type = handler.Method.DeclaringType;
        while (type is { Name: ['<', ..], DeclaringType: { } outer })
        {
            type = outer;
        }

        return type?.Name ?? handler.Method.Name;
    }

    // Kestrel's options (and so this) are built while the host is built, before start-up validation
    // runs; an invalid section must not throw here. UseGatewayAsync lists the errors and stops the
    // gateway before it serves, so the defaults used meanwhile are never in force.
    private static TOptions CreateOrDefault(IOptionsFactory<TOptions> factory)
    {
        try
        {
            return factory.Create(Options.DefaultName);
        }
        catch (Exception ex) when (ex is OptionsValidationException or InvalidOperationException)
        {
            return new TOptions();
        }
    }

    private IReadOnlyDictionary<string, string> AppliedOf(IReadOnlyDictionary<string, string> keys, IReadOnlyDictionary<string, string>? applied)
        => _appliedKeysOf is null ? keys : _appliedKeysOf(keys, applied);

    private string Snapshot() => ConfigChanges.Snapshot(_configuration, _section);

    public void Dispose() => _subscription.Dispose();

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "{Section} reloaded. Changed: {Changes}.", EventName = "OptionsReloaded")]
        public static partial void Applied(ILogger logger, string section, string changes);

        [LoggerMessage(2, LogLevel.Error, "{Section} reload rejected; the previous settings stay in force. {Errors}", EventName = "OptionsReloadRejected")]
        public static partial void Rejected(ILogger logger, string section, string errors);

        [LoggerMessage(3, LogLevel.Error, "{Section} reloaded, but {Owner} failed to apply it; what it governs may still run on the previous settings. A restart applies them.", EventName = "OptionsApplyFailed")]
        public static partial void HandlerFailed(ILogger logger, string section, string owner, Exception exception);
    }
}
