using Yarp.ReverseProxy.Configuration;

namespace YarpGateway.Configuration;

/// <summary>
/// Learns from YARP whether a configuration was actually applied (readiness depends on it) and
/// reports the rare apply failure that validation did not foresee.
/// </summary>
internal sealed partial class ProxyConfigStatus(GatewayConfigProvider provider, ConfigMetrics metrics, ILogger<ProxyConfigStatus> logger) : IConfigChangeListener
{
    private volatile bool _applied;
    private long _appliedRevision;

    /// <summary>True once YARP has applied a configuration.</summary>
    public bool IsApplied => _applied;

    /// <summary>
    /// The gateway's revision YARP has applied (0 before the first). The provider's revision moves
    /// when a reload is handed to YARP, a moment before routes, clusters and weights are in force.
    /// </summary>
    public long AppliedRevision => Interlocked.Read(ref _appliedRevision);

    public void ConfigurationApplied(IReadOnlyList<IProxyConfig> proxyConfigs)
    {
        foreach (var config in proxyConfigs)
        {
            if (provider.RevisionOf(config) is { } revision)
            {
                Interlocked.Exchange(ref _appliedRevision, revision);
            }
        }

        _applied = true;
    }

    public void ConfigurationApplyingFailed(IReadOnlyList<IProxyConfig> proxyConfigs, Exception exception)
    {
        metrics.Reloaded(applied: false);
        Log.ApplyFailed(logger, exception);
    }

    public void ConfigurationLoaded(IReadOnlyList<IProxyConfig> proxyConfigs)
    {
    }

    public void ConfigurationLoadingFailed(IProxyConfigProvider configProvider, Exception exception)
    {
        metrics.Reloaded(applied: false);
        Log.LoadFailed(logger, exception);
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Error, "YARP could not apply the proxy configuration; the previous one keeps serving.", EventName = "ConfigApplyFailed")]
        public static partial void ApplyFailed(ILogger logger, Exception exception);

        [LoggerMessage(2, LogLevel.Error, "YARP could not load the proxy configuration; the previous one keeps serving.", EventName = "ConfigLoadFailed")]
        public static partial void LoadFailed(ILogger logger, Exception exception);
    }
}
