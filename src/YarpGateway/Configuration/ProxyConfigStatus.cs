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
    private long _failedRevision = -1;

    /// <summary>True once YARP has applied a configuration.</summary>
    public bool IsApplied => _applied;

    /// <summary>
    /// The gateway's revision YARP last failed to apply since start (0 when its revision is not known), or null. Kept
    /// until a restart: when the failure was ASP.NET Core's route table failing to build, the table took no later
    /// configuration either (tried with a route constraint routing could not create, before validation refused those),
    /// though YARP reports each later one as applied.
    /// </summary>
    public long? FailedRevision => Interlocked.Read(ref _failedRevision) is >= 0 and var revision ? revision : null;

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
        long revision = 0;
        foreach (var config in proxyConfigs)
        {
            revision = provider.RevisionOf(config) ?? revision;
        }

        // Logged, then counted, before readiness says so: whoever reads the count or Degraded finds the line that says why.
        Log.ApplyFailed(logger, revision, exception);
        metrics.Reloaded(applied: false);
        Interlocked.Exchange(ref _failedRevision, revision);
    }

    public void ConfigurationLoaded(IReadOnlyList<IProxyConfig> proxyConfigs)
    {
    }

    public void ConfigurationLoadingFailed(IProxyConfigProvider configProvider, Exception exception)
    {
        Log.LoadFailed(logger, exception);
        metrics.Reloaded(applied: false);
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Error, "YARP could not apply revision {Revision} of the proxy configuration; the previous one keeps serving. Later reloads may not reach the route table until the gateway restarts (ASP.NET Core's table takes no update after one that failed to build); readiness stays up, with its config check Degraded until then.", EventName = "ConfigApplyFailed")]
        public static partial void ApplyFailed(ILogger logger, long revision, Exception exception);

        [LoggerMessage(2, LogLevel.Error, "YARP could not load the proxy configuration; the previous one keeps serving.", EventName = "ConfigLoadFailed")]
        public static partial void LoadFailed(ILogger logger, Exception exception);
    }
}
