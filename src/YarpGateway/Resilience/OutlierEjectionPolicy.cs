using System.Runtime.CompilerServices;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;
using YarpGateway.Telemetry;

namespace YarpGateway.Resilience;

/// <summary>
/// <c>OutlierEjection</c>, a passive health policy (cluster <c>HealthCheck.Passive.Policy</c>): a
/// destination is ejected (passive health Unhealthy, so no traffic under any load-balancing policy)
/// after N consecutive failures or a failure rate over a window, where a failure is a transport
/// error, a try timeout or a 5xx response (YARP's built-in policy counts transport errors only).
/// It comes back after the reactivation period with its weight. At most
/// <see cref="OutlierEjectionSettings.MaxEjectedPercent"/> of a cluster's destinations are ejected at once.
/// </summary>
internal sealed partial class OutlierEjectionPolicy(IDestinationHealthUpdater healthUpdater, GatewayMetrics metrics, TimeProvider timeProvider, ILogger<OutlierEjectionPolicy> logger) : IPassiveHealthCheckPolicy
{
    public const string PolicyName = "OutlierEjection";

    private readonly ConditionalWeakTable<DestinationState, DestinationCounts> _counts = new();
    private readonly ConditionalWeakTable<Yarp.ReverseProxy.Configuration.ClusterConfig, OutlierEjectionSettings> _settings = new();
    private readonly Lock _ejectLock = new();

    public string Name => PolicyName;

    public void RequestProxied(HttpContext context, ClusterState cluster, DestinationState destination)
    {
        if (cluster.Model is not { } model)
        {
            return;
        }

        var settings = _settings.GetValue(model.Config, OutlierEjectionSettings.From);
        var counts = _counts.GetValue(destination, _ => new DestinationCounts(timeProvider, settings.Window));
        counts.Window.AddTotal();
        if (!IsFailure(context))
        {
            Interlocked.Exchange(ref counts.Consecutive, 0);
            return;
        }

        counts.Window.AddMarked();
        var consecutive = Interlocked.Increment(ref counts.Consecutive);
        var (total, failed) = counts.Window.Sum();
        var byRate = total >= settings.MinimumRequests && failed >= settings.FailureRate * total;
        if (consecutive < settings.ConsecutiveFailures && !byRate)
        {
            return;
        }

        TryEject(cluster, destination, counts, settings, byRate ? $"{failed} of {total} requests failed" : $"{consecutive} consecutive failures");
    }

    private void TryEject(ClusterState cluster, DestinationState destination, DestinationCounts counts, OutlierEjectionSettings settings, string why)
    {
        lock (_ejectLock)
        {
            if (destination.Health.Passive == DestinationHealth.Unhealthy)
            {
                return;
            }

            var all = cluster.Destinations.Values;
            var ejected = all.Count(d => d.Health.Passive == DestinationHealth.Unhealthy);
            if ((ejected + 1) * 100 > settings.MaxEjectedPercent * all.Count)
            {
                metrics.EjectionSkipped(cluster.ClusterId);
                return;
            }

            healthUpdater.SetPassive(cluster, destination, DestinationHealth.Unhealthy, settings.ReactivationPeriod);
            Interlocked.Exchange(ref counts.Consecutive, 0);
            counts.Window.Clear();
        }

        metrics.Ejected(cluster.ClusterId, destination.DestinationId);
        Log.Ejected(logger, destination.DestinationId, cluster.ClusterId, why, settings.ReactivationPeriod);

        // YARP reactivates the destination after the period; count and log it then.
        ITimer? timer = null;
        timer = timeProvider.CreateTimer(_ =>
        {
            metrics.Reactivated(cluster.ClusterId, destination.DestinationId);
            Log.Reactivated(logger, destination.DestinationId, cluster.ClusterId);
            timer?.Dispose();
        }, null, settings.ReactivationPeriod, Timeout.InfiniteTimeSpan);
    }

    private static bool IsFailure(HttpContext context)
    {
        if (context.Features.Get<RetryAttempt>() is { TryTimedOut: true })
        {
            return true;
        }

        if (context.Features.Get<IForwarderErrorFeature>() is { } error)
        {
            // The client going away says nothing about the destination.
            return error.Error is not (ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled or ForwarderError.RequestBodyClient
                or ForwarderError.ResponseBodyCanceled or ForwarderError.ResponseBodyClient or ForwarderError.UpgradeRequestCanceled
                or ForwarderError.UpgradeRequestClient or ForwarderError.UpgradeResponseCanceled or ForwarderError.UpgradeResponseClient);
        }

        return context.Response.StatusCode >= 500;
    }

    private sealed class DestinationCounts(TimeProvider timeProvider, TimeSpan window)
    {
        public readonly SlidingWindowCounter Window = new(timeProvider, window);
        public int Consecutive;
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "Destination {DestinationId} of cluster {ClusterId} ejected ({Why}); it gets no traffic for {ReactivationPeriod}.", EventName = "DestinationEjected")]
        public static partial void Ejected(ILogger logger, string destinationId, string clusterId, string why, TimeSpan reactivationPeriod);

        [LoggerMessage(2, LogLevel.Information, "Destination {DestinationId} of cluster {ClusterId} reactivated after ejection.", EventName = "DestinationReactivated")]
        public static partial void Reactivated(ILogger logger, string destinationId, string clusterId);
    }
}
