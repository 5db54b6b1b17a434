using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace YarpGateway.Health;

/// <summary>Unhealthy from the moment shutdown begins (SIGTERM), so Kubernetes stops sending traffic.</summary>
internal sealed class ShutdownHealthCheck(IHostApplicationLifetime lifetime) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        => Task.FromResult(lifetime.ApplicationStopping.IsCancellationRequested
            ? HealthCheckResult.Unhealthy("shutting down")
            : HealthCheckResult.Healthy("running"));
}
