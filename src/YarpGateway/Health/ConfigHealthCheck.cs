using Microsoft.Extensions.Diagnostics.HealthChecks;
using YarpGateway.Configuration;

namespace YarpGateway.Health;

/// <summary>Healthy once YARP has applied a validated proxy configuration.</summary>
internal sealed class ConfigHealthCheck(ProxyConfigStatus status) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        => Task.FromResult(status.IsApplied
            ? HealthCheckResult.Healthy("proxy configuration applied")
            : HealthCheckResult.Unhealthy("proxy configuration not applied yet"));
}
