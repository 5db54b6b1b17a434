using Microsoft.IdentityModel.Tokens;
using Yarp.ReverseProxy.Model;
using YarpGateway.Telemetry;

namespace YarpGateway.Security;

/// <summary>
/// Counts and logs the requests the bearer scheme refused (401, 403, or 503 while the issuer's keys
/// cannot be fetched): each in <c>gateway.auth.refused</c>, and one
/// log line a second per route and reason with the number left out (ASP.NET Core's own lines, one per
/// request, are at Warning in appsettings.json).
/// </summary>
internal sealed partial class AuthenticationRefusals(SecurityMetrics metrics, Telemetry.RequestId requestIds, TimeProvider timeProvider, ILogger<AuthenticationRefusals> logger)
{
    private readonly LogThrottle _throttle = new(timeProvider, logger);

    public void Refused(HttpContext context, int status, Exception? failure)
    {
        var route = context.GetEndpoint()?.Metadata.GetMetadata<RouteModel>()?.Config.RouteId ?? "-";
        var reason = status switch
        {
            StatusCodes.Status403Forbidden => "forbidden",
            StatusCodes.Status503ServiceUnavailable => "issuer_unavailable",
            _ => ReasonOf(failure),
        };
        metrics.Refused(route, status, reason);
        if (logger.IsEnabled(LogLevel.Information) && _throttle.ShouldLog(route + "|" + reason, out var suppressed))
        {
            // The issuer's failure message embeds its cause's stack trace: the causes' messages alone.
            var detail = status == StatusCodes.Status503ServiceUnavailable ? ExceptionText.Describe(failure?.InnerException ?? failure) : failure?.Message ?? "-";
            Log.Refused(logger, status, route, requestIds.Of(context), reason, detail, suppressed);
        }
    }

    /// <summary>The <c>reason</c> tag for a 401.</summary>
    internal static string ReasonOf(Exception? failure) => failure switch
    {
        null => "missing",
        SecurityTokenExpiredException => "expired",
        SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException => "bad_signature",
        SecurityTokenInvalidIssuerException => "wrong_issuer",
        SecurityTokenInvalidAudienceException => "wrong_audience",
        SecurityTokenMalformedException or ArgumentException => "malformed",
        _ => "invalid",
    };

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Refused with {Status} on route '{Route}' (request id {RequestId}): {Reason} ({Detail}); {Suppressed} similar refusals in the last second not logged.", EventName = "AuthRefused")]
        public static partial void Refused(ILogger logger, int status, string route, string requestId, string reason, string detail, long suppressed);
    }
}
