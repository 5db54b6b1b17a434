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
/// A destination whose address is changed (a typo corrected, a backend moved) is another backend: what was
/// counted against the old address is forgotten, and an ejection of it is lifted at once.
/// </summary>
internal sealed partial class OutlierEjectionPolicy(IDestinationHealthUpdater healthUpdater, ResilienceMetrics metrics, TimeProvider timeProvider, ILogger<OutlierEjectionPolicy> logger)
    : IPassiveHealthCheckPolicy, IClusterChangeListener, IDisposable
{
    // The kinds of line its budget counts apart: a backend many clusters share failing under traffic ejects a destination
    // of each (up to MaxEjectedPercent), and each ejection was a line.
    private static readonly Telemetry.ChangeLineBudget.Kind EjectedKind = new(LogLevel.Warning, "destinations were ejected", ofDestinations: true);
    private static readonly Telemetry.ChangeLineBudget.Kind ReactivatedKind = new(LogLevel.Information, "destinations were reactivated after ejection", ofDestinations: true);

    private readonly Telemetry.ChangeLineBudget _lines = new(timeProvider, logger, EjectedKind, ReactivatedKind);

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

        var why = byConnect ? $"{consecutiveConnect} connection attempts in a row failed"
            : byRate ? $"{failed} of {total} requests failed"
            : $"{consecutive} consecutive failures";
        if (context.Features.Get<IForwarderErrorFeature>()?.Exception is { } last)
        {
            // The reason too: once every destination is out, requests get 503 with no exception of their own, and the
            // forwarding errors' line (once a second) may have named another cluster's.
            why += "; the last: " + Telemetry.ExceptionText.Describe(last);
        }

        TryEject(cluster, destination, counts, settings, why);
    }

    // In a method of its own: the factory's closure over settings would otherwise be allocated on
    // entry to RequestProxied, on every request, though it is needed once per destination.
    private DestinationCounts CountsFor(DestinationState destination, OutlierEjectionSettings settings)
        => _counts.GetValue(destination, d => new DestinationCounts(timeProvider, settings.Window, d.Model.Config.Address));

    private void TryEject(ClusterState cluster, DestinationState destination, DestinationCounts counts, OutlierEjectionSettings settings, string why)
    {
        TimeSpan period;
        long ejection;
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

            // YARP keeps the first reactivation it was given for a destination until it is due: after an
            // ejection lifted early (its address changed), a new one ends when that one was to.
            var now = timeProvider.GetTimestamp();
            period = settings.ReactivationPeriod;
            if (counts.ReactivationDue > now)
            {
                period = timeProvider.GetElapsedTime(now, counts.ReactivationDue);
            }
            else
            {
                counts.ReactivationDue = now + (long)(period.TotalSeconds * timeProvider.TimestampFrequency);
            }

            healthUpdater.SetPassive(cluster, destination, DestinationHealth.Unhealthy, period);
            ejection = counts.Ejection = ++counts.Ejections;
            counts.Forget();
        }

        metrics.Ejected(cluster.ClusterId, destination.DestinationId);
        if (_lines.TryTake(EjectedKind, cluster.ClusterId))
        {
            Log.Ejected(logger, destination.DestinationId, cluster.ClusterId, why, period);
        }

        // YARP reactivates the destination after the period; count and log it then, unless the ejection
        // was lifted meanwhile or the destination is gone from the configuration.
        ITimer? timer = null;
        timer = timeProvider.CreateTimer(_ =>
        {
            timer?.Dispose();
            lock (_ejectLock)
            {
                if (counts.Ejection != ejection)
                {
                    return;
                }

                counts.Ejection = 0;
            }

            if (cluster.Destinations.TryGetValue(destination.DestinationId, out var current) && ReferenceEquals(current, destination))
            {
                metrics.Reactivated(cluster.ClusterId, destination.DestinationId);
                if (_lines.TryTake(ReactivatedKind, cluster.ClusterId))
                {
                    Log.Reactivated(logger, destination.DestinationId, cluster.ClusterId);
                }
            }
        }, null, period, Timeout.InfiniteTimeSpan);
    }

    public void OnClusterAdded(ClusterState cluster)
    {
    }

    public void Dispose() => _lines.Dispose();

    public void OnClusterRemoved(ClusterState cluster)
    {
    }

    /// <summary>
    /// A destination whose address changed starts afresh: its failures were another backend's, and its ejection is lifted
    /// (an operator who corrects a typo or moves a backend should not wait out the reactivation period for it).
    /// </summary>
    public void OnClusterChanged(ClusterState cluster)
    {
        foreach (var destination in cluster.Destinations.Values)
        {
            var address = destination.Model.Config.Address;
            if (!_counts.TryGetValue(destination, out var counts) || string.Equals(counts.Address, address, StringComparison.Ordinal))
            {
                continue;
            }

            string before;
            bool lifted;
            lock (_ejectLock)
            {
                before = counts.Address;
                counts.Address = address;
                lifted = counts.Ejection != 0 && destination.Health.Passive == DestinationHealth.Unhealthy;
                counts.Ejection = 0;
                counts.Forget();
                if (lifted)
                {
                    healthUpdater.SetPassive(cluster, destination, DestinationHealth.Unknown, TimeSpan.Zero);
                }
            }

            if (lifted)
            {
                metrics.Reactivated(cluster.ClusterId, destination.DestinationId);
                Log.Lifted(logger, destination.DestinationId, cluster.ClusterId, before, address);
            }
        }
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

    private sealed class DestinationCounts(TimeProvider timeProvider, TimeSpan window, string address)
    {
        public readonly SlidingWindowCounter Window = new(timeProvider, window);
        public int Consecutive;
        public int ConsecutiveConnect;

        // The rest under the policy's lock. The address counted for; the ejection in force (0: none) and how many there
        // were; when YARP's reactivation of the destination is due (a timestamp; YARP keeps it even if the ejection is lifted).
        public string Address = address;
        public long Ejection;
        public long Ejections;
        public long ReactivationDue;

        /// <summary>Forgets the failures counted so far (at an ejection, and when the address changes).</summary>
        public void Forget()
        {
            Interlocked.Exchange(ref Consecutive, 0);
            Interlocked.Exchange(ref ConsecutiveConnect, 0);
            Window.Clear();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "Destination {DestinationId} of cluster {ClusterId} ejected ({Why}); it gets no traffic for {ReactivationPeriod}.", EventName = "DestinationEjected")]
        public static partial void Ejected(ILogger logger, string destinationId, string clusterId, string why, TimeSpan reactivationPeriod);

        [LoggerMessage(2, LogLevel.Information, "Destination {DestinationId} of cluster {ClusterId} reactivated after ejection.", EventName = "DestinationReactivated")]
        public static partial void Reactivated(ILogger logger, string destinationId, string clusterId);

        [LoggerMessage(3, LogLevel.Information, "Destination {DestinationId} of cluster {ClusterId} reactivated: its address changed from {Before} to {Address}, so its ejection, which was the old address's, is lifted.", EventName = "DestinationEjectionLifted")]
        public static partial void Lifted(ILogger logger, string destinationId, string clusterId, string before, string address);
    }
}
