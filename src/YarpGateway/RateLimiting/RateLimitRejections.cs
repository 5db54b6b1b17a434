using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using Yarp.ReverseProxy.Model;
using YarpGateway.Telemetry;

namespace YarpGateway.RateLimiting;

/// <summary>
/// A refused request: <c>Retry-After</c> in whole seconds (when the limiter knows when a permit comes
/// back, else 1), and one log line a second per route and policy with the number left out. The count
/// itself is ASP.NET Core's <c>aspnetcore.rate_limiting.requests{result="endpoint_limiter"}</c>, by policy.
/// </summary>
internal sealed partial class RateLimitRejections(Telemetry.RequestId requestIds, TimeProvider timeProvider, ILogger<RateLimitRejections> logger)
{
    private readonly LogThrottle _throttle = new(timeProvider, logger);

    public void Rejected(HttpContext context, RateLimitLease lease)
    {
        var seconds = lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? Math.Max(1, (long)Math.Ceiling(retryAfter.TotalSeconds)) : 1;
        context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        if (!logger.IsEnabled(LogLevel.Information))
        {
            return;
        }

        var metadata = context.GetEndpoint()?.Metadata;
        var policy = metadata?.GetMetadata<EnableRateLimitingAttribute>()?.PolicyName ?? "-";
        var route = metadata?.GetMetadata<RouteModel>()?.Config.RouteId ?? "-";
        if (_throttle.ShouldLog(route + "|" + policy, out var suppressed))
        {
            Log.Rejected(logger, route, requestIds.Of(context), policy, seconds, suppressed);
        }
    }

    /// <summary>A policy's partitions reached MaxPartitions; new keys share the overflow partition. Logged at most once a second.</summary>
    public void Overflowing(PartitionedPolicy policy)
    {
        if (_throttle.ShouldLog("overflow|" + policy.Name, out _))
        {
            Log.Overflowing(logger, policy.Name, policy.MaxPartitions, policy.TakeOverflowed());
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Rate limit: refused a request on route '{Route}' (request id {RequestId}) by policy '{Policy}' (429, Retry-After {RetryAfterSeconds} s); {Suppressed} similar refusals in the last second not logged.", EventName = "RateLimited")]
        public static partial void Rejected(ILogger logger, string route, string requestId, string policy, long retryAfterSeconds, long suppressed);

        [LoggerMessage(2, LogLevel.Warning, "Rate limit policy '{Policy}' holds MaxPartitions ({MaxPartitions}) partitions: {Requests} requests with new keys went to the shared overflow partition since this was last logged. A flood of distinct client addresses or header values, or MaxPartitions too low.", EventName = "RateLimitPartitionsFull")]
        public static partial void Overflowing(ILogger logger, string policy, int maxPartitions, long requests);
    }
}
