using Microsoft.Extensions.Diagnostics.HealthChecks;
using YarpGateway.Configuration;

namespace YarpGateway.Health;

/// <summary>
/// Healthy once YARP has applied a validated proxy configuration; Degraded (still 200) from a configuration YARP could not
/// apply until a restart, as the routes in force may then be an earlier revision's whatever is reloaded after it.
/// </summary>
internal sealed class ConfigHealthCheck(ProxyConfigStatus status) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        => Task.FromResult(!status.IsApplied
            ? HealthCheckResult.Unhealthy("proxy configuration not applied yet")
            : status.FailedRevision is { } failed
                ? HealthCheckResult.Degraded($"revision {failed} of the proxy configuration could not be applied (ConfigApplyFailed in the log); the routes in force may be an earlier revision's until the gateway restarts")
                : HealthCheckResult.Healthy("proxy configuration applied"));
}
