using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;
using YarpGateway.Configuration;
using YarpGateway.Telemetry;

namespace YarpGateway.Health;

/// <summary>
/// Wraps each of YARP's active health policies (<c>ConsecutiveFailures</c>, and any other registered)
/// to log what an operator needs from active health checks: one line when a destination's active
/// health changes, with the probe result that changed it ("connection refused", "status 503").
/// YARP itself logged a warning with a stack trace (17 lines) for every failed probe, every interval,
/// for as long as a backend was down; that category is quieted to errors (<see cref="HealthLogFilters"/>). When many
/// change at once, the lines past ten a second of each kind are counted instead (<see cref="ChangeLineBudget"/>, one
/// shared by every policy wrapped).
/// </summary>
internal sealed partial class ActiveHealthLog(IActiveHealthCheckPolicy inner, ChangeLineBudget budget, ILogger<ActiveHealthLog> logger) : IActiveHealthCheckPolicy
{
    // The kinds of line its budget counts apart.
    internal static readonly ChangeLineBudget.Kind TurnedUnhealthy = new(LogLevel.Warning, "destinations failed their active health checks", ofDestinations: true);
    internal static readonly ChangeLineBudget.Kind TurnedHealthy = new(LogLevel.Information, "destinations passed their active health checks again", ofDestinations: true);
    internal static readonly ChangeLineBudget.Kind AllFailingKind = new(LogLevel.Warning, "clusters had every destination fail its active health checks (their requests go to all of them anyway)", ofDestinations: false);
    internal static readonly ChangeLineBudget.Kind AllFailingNoneKind = new(LogLevel.Error, "clusters had every destination fail its active health checks, and their AvailableDestinationsPolicy left none (their requests get 503)", ofDestinations: false);

    public string Name => inner.Name;

    public void ProbingCompleted(ClusterState cluster, IReadOnlyList<DestinationProbingResult> probingResults)
    {
        Span<DestinationHealth> before = probingResults.Count <= 64 ? stackalloc DestinationHealth[probingResults.Count] : new DestinationHealth[probingResults.Count];
        for (var i = 0; i < probingResults.Count; i++)
        {
            before[i] = probingResults[i].Destination.Health.Active;
        }

        inner.ProbingCompleted(cluster, probingResults);

        var turnedUnhealthy = false;
        for (var i = 0; i < probingResults.Count; i++)
        {
            var result = probingResults[i];
            var now = result.Destination.Health.Active;
            if (now == before[i] || (now == DestinationHealth.Healthy && before[i] == DestinationHealth.Unknown))
            {
                continue; // unchanged, or the first verdict on a healthy destination: nothing to report
            }

            if (now == DestinationHealth.Unhealthy)
            {
                turnedUnhealthy = true;
                if (budget.TryTake(TurnedUnhealthy, cluster.ClusterId))
                {
                    Log.Unhealthy(logger, result.Destination.DestinationId, cluster.ClusterId, Describe(result));
                }
            }
            else if (now == DestinationHealth.Healthy && budget.TryTake(TurnedHealthy, cluster.ClusterId))
            {
                Log.Healthy(logger, result.Destination.DestinationId, cluster.ClusterId, Describe(result));
            }
        }

        // The line above says a failing destination gets no traffic; when none is left, YARP's
        // default policy sends to all of them instead, and the log must say which happens.
        if (turnedUnhealthy && cluster.Destinations.Values.All(static d => d.Health.Active == DestinationHealth.Unhealthy))
        {
            var policy = cluster.Model.Config.HealthCheck?.AvailableDestinationsPolicy;
            if (string.IsNullOrEmpty(policy) || string.Equals(policy, HealthyOrPanic, StringComparison.OrdinalIgnoreCase))
            {
                if (budget.TryTake(AllFailingKind, cluster.ClusterId))
                {
                    Log.AllFailingPanic(logger, cluster.ClusterId, cluster.Destinations.Count);
                }
            }
            else if (budget.TryTake(AllFailingNoneKind, cluster.ClusterId))
            {
                Log.AllFailing(logger, cluster.ClusterId, cluster.Destinations.Count, policy);
            }
        }
    }

    /// <summary>YARP's default available-destinations policy: the healthy ones, or every one when none is.</summary>
    private const string HealthyOrPanic = "HealthyOrPanic";

    internal static string Describe(DestinationProbingResult result)
    {
        if (result.Response is { } response)
        {
            return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"status {(int)response.StatusCode}");
        }

        var innermost = result.Exception;
        while (innermost?.InnerException is not null)
        {
            innermost = innermost.InnerException;
        }

        return innermost?.Message ?? "no response";
    }

    /// <summary>Replaces every registered active health policy with this wrapper around it, all of them counting their lines together.</summary>
    public static void Decorate(IServiceCollection services)
    {
        services.AddKeyedSingleton(nameof(ActiveHealthLog), static (sp, _) => Budget(sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<ActiveHealthLog>>()));
        services.Decorate<IActiveHealthCheckPolicy>(static _ => true, static (sp, inner) => new ActiveHealthLog(
            inner(), sp.GetRequiredKeyedService<ChangeLineBudget>(nameof(ActiveHealthLog)), sp.GetRequiredService<ILogger<ActiveHealthLog>>()));
    }

    /// <summary>Its lines' budget, of the kinds above.</summary>
    internal static ChangeLineBudget Budget(TimeProvider timeProvider, ILogger<ActiveHealthLog> logger)
        => new(timeProvider, logger, TurnedUnhealthy, TurnedHealthy, AllFailingKind, AllFailingNoneKind);

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "Destination {DestinationId} of cluster {ClusterId} failed its active health checks ({Reason}); it gets no traffic until they pass again.", EventName = "ActiveHealthUnhealthy")]
        public static partial void Unhealthy(ILogger logger, string destinationId, string clusterId, string reason);

        [LoggerMessage(2, LogLevel.Information, "Destination {DestinationId} of cluster {ClusterId} passes its active health checks again ({Reason}).", EventName = "ActiveHealthHealthy")]
        public static partial void Healthy(ILogger logger, string destinationId, string clusterId, string reason);

        [LoggerMessage(3, LogLevel.Warning, "Every destination of cluster {ClusterId} ({Count}) fails its active health checks: requests go to all of them anyway (YARP's HealthyOrPanic policy), until one passes. If the backends serve, check the cluster's HealthCheck:Active:Path.", EventName = "ActiveHealthAllFailing")]
        public static partial void AllFailingPanic(ILogger logger, string clusterId, int count);

        [LoggerMessage(4, LogLevel.Error, "Every destination of cluster {ClusterId} ({Count}) fails its active health checks, and its AvailableDestinationsPolicy ({Policy}) leaves none: its requests get 503 until one passes.", EventName = "ActiveHealthAllFailingNone")]
        public static partial void AllFailing(ILogger logger, string clusterId, int count, string policy);
    }
}
