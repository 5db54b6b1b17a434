using Microsoft.Extensions.Options;

namespace YarpGateway.Health;

/// <summary>
/// Two framework categories log per probe, not per change: YARP's active health monitor (a warning
/// with a stack trace for every failed probe) and ASP.NET Core's health check service (an error for
/// every unhealthy readiness probe, a normal shutdown included). Both are set to Error and Critical
/// respectively, and the gateway logs the changes instead (<see cref="ActiveHealthLog"/>,
/// <see cref="HealthResponseWriter"/>). A third says again what the gateway's own line says, without
/// the reason: YARP's destination health updater, a warning for each destination marked unhealthy
/// (actively or passively), next to <see cref="ActiveHealthLog"/>'s and outlier ejection's line; it
/// is set to Error. A <c>Logging:LogLevel</c> entry for any of these categories wins.
/// </summary>
internal sealed class HealthLogFilters(IConfiguration configuration) : IConfigureOptions<LoggerFilterOptions>
{
    internal const string ActiveHealthMonitor = "Yarp.ReverseProxy.Health.ActiveHealthCheckMonitor";
    internal const string HealthCheckService = "Microsoft.Extensions.Diagnostics.HealthChecks.DefaultHealthCheckService";
    internal const string DestinationHealthUpdater = "Yarp.ReverseProxy.Health.DestinationHealthUpdater";

    public void Configure(LoggerFilterOptions options)
    {
        Quiet(options, ActiveHealthMonitor, LogLevel.Error);
        Quiet(options, HealthCheckService, LogLevel.Critical);
        Quiet(options, DestinationHealthUpdater, LogLevel.Error);
    }

    private void Quiet(LoggerFilterOptions options, string category, LogLevel level)
    {
        if (configuration[$"Logging:LogLevel:{category}"] is null)
        {
            options.AddFilter(category, level);
        }
    }
}
