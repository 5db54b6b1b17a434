using System.Runtime.CompilerServices;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace YarpGateway.Resilience;

/// <summary>
/// <c>OutlierEjection</c>, a passive health policy (cluster <c>HealthCheck.Passive.Policy</c>): a
/// destination is ejected (passive health Unhealthy, so no traffic under any load-balancing policy)
/// after N consecutive failures or a failure rate over a window, where a failure is a transport
/// error, a try timeout or a 5xx response (YARP's built-in policy counts transport errors only).
/// A refused or timed-out connect is no slow backend but a missing one: fewer of those in a row
/// (<see cref="OutlierEjectionSettings.ConsecutiveConnectFailures"/>) eject it.
/// It comes back after the reactivation period with its weight. At most
/// <see cref="OutlierEjectionSettings.MaxEjectedPercent"/> of a cluster's destinations are ejected at once.
/// </summary>
internal sealed partial class OutlierEjectionPolicy(IDestinationHealthUpdater healthUpdater, ResilienceMetrics metrics, TimeProvider timeProvider, ILogger<OutlierEjectionPolicy> logger) : IPassiveHealthCheckPolicy
{
    public const string PolicyName = "OutlierEjection";

    private readonly ConditionalWeakTable<DestinationState, DestinationCounts> _counts = new();
    private readonly ConditionalWeakTable<Yarp.ReverseProxy.Configuration.ClusterConfig, OutlierEjectionSettings> _settings = new();
    private readonly Lock _ejectLock = new();

    public string Name => PolicyName;

    public void RequestProxied(HttpContext context, ClusterState cluster, DestinationState destination)
        => AttemptEnded(context, cluster, destination, tryTimedOut: context.Features.Get<RetryAttempt>() is { TryTimedOut: true });

    /// <summary>
    /// An attempt's outcome, from the retry middleware, which knows whether the attempt's try timeout fired (YARP reports that
    /// cancellation as the client's, which is no failure of the destination's) without a lookup of its attempt in the request's
    /// features, which <see cref="RequestProxied"/> makes.
    /// </summary>
    internal void AttemptEnded(HttpContext context, ClusterState cluster, DestinationState destination, bool tryTimedOut)
    {
        if (cluster.Model is not { } model)
        {
            return;
        }

        var settings = _settings.GetValue(model.Config, OutlierEjectionSettings.From);
        var counts = _counts.TryGetValue(destination, out var known) ? known : CountsFor(destination, settings);
        counts.Window.AddTotal();
        var failure = tryTimedOut ? Failure.Other : Classify(context);
        if (failure == Failure.None)
        {
            Interlocked.Exchange(ref counts.Consecutive, 0);
            Interlocked.Exchange(ref counts.ConsecutiveConnect, 0);
            return;
        }

        counts.Window.AddMarked();
        var consecutive = Interlocked.Increment(ref counts.Consecutive);
        var consecutiveConnect = 0;
        if (failure == Failure.Connect)
        {
            consecutiveConnect = Interlocked.Increment(ref counts.ConsecutiveConnect);
        }
        else
        {
            Interlocked.Exchange(ref counts.ConsecutiveConnect, 0);
        }

        var (total, failed) = counts.Window.Sum();
        var byRate = total >= settings.MinimumRequests && failed >= settings.FailureRate * total;
        var byConnect = consecutiveConnect >= settings.ConsecutiveConnectFailures;
        if (consecutive < settings.ConsecutiveFailures && !byRate && !byConnect)
        {
            return;
        }

        TryEject(cluster, destination, counts, settings,
            byConnect ? $"{consecutiveConnect} connection attempts in a row failed"
            : byRate ? $"{failed} of {total} requests failed"
            : $"{consecutive} consecutive failures");
    }

    // In a method of its own: the factory's closure over settings would otherwise be allocated on
    // entry to RequestProxied, on every request, though it is needed once per destination.
    private DestinationCounts CountsFor(DestinationState destination, OutlierEjectionSettings settings)
        => _counts.GetValue(destination, _ => new DestinationCounts(timeProvider, settings.Window));

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
            Interlocked.Exchange(ref counts.ConsecutiveConnect, 0);
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

    private static Failure Classify(HttpContext context)
    {
        if (context.Features.Get<IForwarderErrorFeature>() is { } error)
        {
            // A stream (gRPC, server-sent events) quiet for longer than the activity timeout was cut
            // after it started: silence is how such a response waits for news, not a sign of a failing
            // destination. (An ordinary response stalled mid-body still counts.)
            if (RetryAttempt.IsActivityTimeoutAfterResponseStarted(error) && IsStream(context.Response.ContentType))
            {
                return Failure.None;
            }

            // The client going away says nothing about the destination, nor does its answer before the body.
            if (ProxyErrorLog.IsAnswerBeforeTheBody(context, error) || ProxyErrorLog.IsClientSide(error.Error))
            {
                return Failure.None;
            }

            if (error.Error == ForwarderError.Request && !RetryAttempt.IsTransportError(error.Exception))
            {
                // The request could not even be built or sent as given (an unsupported method or
                // header, say): the request's fault, not the destination's.
                return Failure.None;
            }

            return error.Error is ForwarderError.Request or ForwarderError.RequestTimedOut
                && RetryAttempt.ClassifyTransport(error.Exception) is AttemptFailure.ConnectFailure or AttemptFailure.ConnectTimeout
                ? Failure.Connect
                : Failure.Other;
        }

        return context.Response.StatusCode >= 500 ? Failure.Other : Failure.None;
    }

    // Responses that are streams of messages by nature: gRPC (and gRPC-Web) and server-sent events.
    private static bool IsStream(string? contentType)
        => contentType is not null
            && (contentType.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase)
                || contentType.StartsWith("text/event-stream", StringComparison.OrdinalIgnoreCase));

    private enum Failure
    {
        None,
        Connect,
        Other,
    }

    private sealed class DestinationCounts(TimeProvider timeProvider, TimeSpan window)
    {
        public readonly SlidingWindowCounter Window = new(timeProvider, window);
        public int Consecutive;
        public int ConsecutiveConnect;
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "Destination {DestinationId} of cluster {ClusterId} ejected ({Why}); it gets no traffic for {ReactivationPeriod}.", EventName = "DestinationEjected")]
        public static partial void Ejected(ILogger logger, string destinationId, string clusterId, string why, TimeSpan reactivationPeriod);

        [LoggerMessage(2, LogLevel.Information, "Destination {DestinationId} of cluster {ClusterId} reactivated after ejection.", EventName = "DestinationReactivated")]
        public static partial void Reactivated(ILogger logger, string destinationId, string clusterId);
    }
}
