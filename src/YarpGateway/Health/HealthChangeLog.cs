using System.Collections.Concurrent;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace YarpGateway.Health;

/// <summary>
/// Logs each probe check's changes, once: a check that turns Degraded or Unhealthy (with its
/// description), a different description while it stays so (another cluster down, say), and its
/// return to Healthy. Probes come every few seconds; the log says what changed, not that a probe ran.
/// The readiness check's 503 during a normal shutdown is logged at Information.
/// </summary>
internal sealed partial class HealthChangeLog(ILogger<HealthChangeLog> logger)
{
    private readonly ConcurrentDictionary<string, (HealthStatus Status, string? Description)> _last = new(StringComparer.Ordinal);

    public void Observe(HealthReport report)
    {
        foreach (var (name, entry) in report.Entries)
        {
            var now = (entry.Status, entry.Description);
            var known = _last.TryGetValue(name, out var before);
            if (known ? before == now || (now.Status == HealthStatus.Healthy && before.Status == HealthStatus.Healthy) : now.Status == HealthStatus.Healthy)
            {
                _last[name] = now;
                continue;
            }

            _last[name] = now;
            if (now.Status == HealthStatus.Healthy)
            {
                Log.Recovered(logger, name, before.Status, entry.Description ?? string.Empty);
            }
            else if (name == "shutdown")
            {
                Log.ShuttingDown(logger, name, now.Status, entry.Description ?? string.Empty);
            }
            else
            {
                Log.Changed(logger, name, now.Status, entry.Description ?? string.Empty);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "Health check '{Check}' is {Status}: {Description}", EventName = "HealthCheckChanged")]
        public static partial void Changed(ILogger logger, string check, HealthStatus status, string description);

        [LoggerMessage(2, LogLevel.Information, "Health check '{Check}' is Healthy again (was {Before}): {Description}", EventName = "HealthCheckRecovered")]
        public static partial void Recovered(ILogger logger, string check, HealthStatus before, string description);

        [LoggerMessage(3, LogLevel.Information, "Health check '{Check}' is {Status}: {Description}", EventName = "HealthCheckShuttingDown")]
        public static partial void ShuttingDown(ILogger logger, string check, HealthStatus status, string description);
    }
}
