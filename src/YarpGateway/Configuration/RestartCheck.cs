using Microsoft.Extensions.Primitives;

namespace YarpGateway.Configuration;

/// <summary>
/// Whether the configuration files as they are now would start the gateway. A running gateway keeps its last good
/// settings through any edit it rejects, and keeps its start-up values through an edit of what only a restart applies,
/// so nothing it serves shows that a new pod (a rolling update, an evicted or rescheduled pod) would exit at once: the
/// errors are logged when the edit is saved, and an alert on a log line ten minutes old has long cleared. This keeps
/// the answer for as long as the files hold the error: <c>gateway.config.restart_errors</c>, <c>/status.json</c>'s
/// <c>restartErrors</c> and SIGHUP's line.
/// </summary>
/// <remarks>
/// The checks start-up runs besides the proxy configuration's (<see cref="StartupChecks"/>) run again on first need
/// after a change of the configuration or of an HTTPS endpoint's certificate files (as the
/// <see cref="Endpoints.CertificateReloader"/> finds it, within its 10 s), not on every read, and on every read while
/// they found errors: some read files the configuration only names (<see cref="Endpoints.CertificateFileErrors"/>),
/// which can be fixed without a change of the configuration, and an error kept until the next edit would say a restart
/// fails when it would not. The proxy configuration's part is the provider's, which validates each change already
/// (<see cref="GatewayConfigProvider.RefusedAtStart"/>).
/// </remarks>
internal sealed class RestartCheck : IDisposable
{
    private readonly IConfiguration _configuration;
    private readonly StartupChecks _checks;
    private readonly GatewayConfigProvider _proxyConfig;
    private readonly IDisposable _subscription;
    private readonly IDisposable _certificates;
    private readonly Lock _gate = new();
    private int _stale = 1;
    private IReadOnlyList<ConfigError> _settingsErrors = [];

    public RestartCheck(IConfiguration configuration, StartupChecks checks, GatewayConfigProvider proxyConfig, Endpoints.CertificateReloader certificates)
    {
        _configuration = configuration;
        _checks = checks;
        _proxyConfig = proxyConfig;
        _subscription = ChangeToken.OnChange(configuration.GetReloadToken, () => Volatile.Write(ref _stale, 1));
        _certificates = ChangeToken.OnChange(certificates.GetFilesChangedToken, () => Volatile.Write(ref _stale, 1));
    }

    /// <summary>Every error start-up would list for the files as they are now, with the file that set each; empty when a restart would start.</summary>
    public IReadOnlyList<ConfigError> Errors
    {
        get
        {
            IReadOnlyList<ConfigError> settings;
            lock (_gate)
            {
                if (Interlocked.Exchange(ref _stale, 0) == 1 || _settingsErrors.Count > 0)
                {
                    // A change while this runs marks it stale again: the next read finds it.
                    _settingsErrors = ConfigSourceLocator.WithFiles(_configuration, _checks.Find());
                }

                settings = _settingsErrors;
            }

            var proxy = _proxyConfig.RefusedAtStart;
            return proxy.Count == 0 ? settings : [.. settings, .. proxy];
        }
    }

    public void Dispose()
    {
        _subscription.Dispose();
        _certificates.Dispose();
    }
}
