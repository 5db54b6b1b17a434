using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;
using YarpGateway.Telemetry;

namespace YarpGateway.Resilience;

/// <summary>
/// What the operator reads when proxying fails, in place of YARP's own per-request warnings (its
/// <c>Yarp.ReverseProxy.Forwarder</c> categories and its load-balancing middleware, which warns on
/// every request that finds no destination, are at Error in appsettings.json). YARP writes a
/// warning with a stack trace for every failed request: with one destination down, 400,000 log lines
/// (52 MB) in 10 s, and a third of the gateway's throughput spent writing them. Here each request's
/// final error is counted in <c>gateway.proxy.errors</c>, and logged as one line at most once a
/// second per cluster and error, with the number of similar ones left out. Errors caused by the
/// client (it went away, or its side of the copy failed) go to Debug: they are the client's business.
/// </summary>
internal sealed partial class ProxyErrorLog(ResilienceMetrics metrics, RequestId requestIds, TimeProvider timeProvider, ILogger<ProxyErrorLog> logger)
{
    private readonly LogThrottle _throttle = new(timeProvider, logger);

    /// <summary>Called once per proxied request, after retries, with the request's final state.</summary>
    public void Record(HttpContext context, IReverseProxyFeature proxy)
    {
        if (context.Features.Get<IForwarderErrorFeature>() is not { } error || error.Error == ForwarderError.None)
        {
            return;
        }

        if (error.Error == ForwarderError.Request && Endpoints.BackendConnectionLimitException.In(error.Exception))
        {
            return; // answered 503 for the gateway's own limit, which counts and logs it (BackendConnectionLimit)
        }

        if (IsAnswerBeforeTheBody(context, error))
        {
            return; // the backend answered without the rest of the body, and said so: nothing failed
        }

        // A timeout has its own line and counter from the retry middleware, which knows which one
        // fired. YARP sees a per-try or route timeout as a cancellation (request_canceled); it is
        // counted here as the timeout it was.
        var attempt = context.Features.Get<RetryAttempt>();
        var timedOut = error.Error == ForwarderError.RequestTimedOut || attempt?.TimeoutKind is not null;
        var cluster = proxy.Cluster?.Config.ClusterId ?? "-";
        var name = timedOut ? TagOf(ForwarderError.RequestTimedOut) : TagOf(error.Error);
        metrics.ProxyError(cluster, name);
        if (timedOut)
        {
            return;
        }

        var clientSide = IsClientSide(error.Error);
        if (!logger.IsEnabled(clientSide ? LogLevel.Debug : LogLevel.Warning) || !_throttle.ShouldLog(cluster + "|" + name, out var suppressed, clientSide ? LogLevel.Debug : LogLevel.Warning))
        {
            return;
        }

        var route = proxy.Route.Config.RouteId;
        var destination = proxy.ProxiedDestination?.DestinationId ?? "-";
        var attempts = attempt?.Number ?? 1;
        var reason = ExceptionText.Describe(error.Exception);
        if (error.Error == ForwarderError.ResponseBodyDestination && context.Response.HasStarted)
        {
            // "answered 200" alone would read as a success: the client got the status and part of
            // the body, then its connection reset (HTTP/2: the stream), so that it cannot take the
            // part for the whole.
            reason = "The response was cut short and the client's connection reset. " + reason;
        }

        if (CertificateHint(error.Exception) is { } hint)
        {
            reason += ". " + hint;
        }

        var id = requestIds.Of(context);
        if (clientSide)
        {
            Log.ClientError(logger, name, route, cluster, destination, id, context.Response.StatusCode, reason, suppressed);
        }
        else
        {
            Log.DestinationError(logger, name, route, cluster, destination, id, attempts, context.Response.StatusCode, reason, suppressed);
        }
    }

    /// <summary>
    /// What to do about a backend's certificate the gateway refused, which .NET names only by its chain status
    /// (<c>UntrustedRoot</c>, <c>RemoteCertificateNameMismatch</c>): an internal CA is the usual cause, and the fix is
    /// outside the configuration.
    /// </summary>
    internal static string? CertificateHint(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is System.Security.Authentication.AuthenticationException)
            {
                return e.Message.Contains("NameMismatch", StringComparison.Ordinal)
                    ? "The backend's certificate is not for the host in the destination's Address (or its Host): see Backends over HTTPS in docs/configuration.md"
                    : e.Message.Contains("certificate chain", StringComparison.Ordinal)
                        ? "The backend's certificate is not signed by a CA this gateway trusts: add the CA with SSL_CERT_DIR (see Backends over HTTPS in docs/configuration.md)"
                        : null;
            }
        }

        return null;
    }

    /// <summary>
    /// The backend answered before it read the whole body and stopped the rest: over HTTP/2 it resets the stream after
    /// its answer (RFC 9113 §8.1), and YARP, which forwards the answer, also reports the unfinished body as
    /// <see cref="ForwarderError.RequestBodyDestination"/>. The answer is a 4xx (413 for an upload over its limit, 401 for
    /// a missing token), a 2xx or 3xx (an upload accepted unread, a 303 to a login page: RFC 9113 allows an answer that
    /// does not depend on the rest), or a gRPC service's end of a client stream (a validation error at the first bad
    /// message: a 200 with <c>grpc-status</c> in the headers or the trailers). Not a failure of the destination: each
    /// such answer had been a warning, a proxy error and a failure towards outlier ejection, so that five refused
    /// uploads in a row ejected a healthy destination (and, until 2026-11-30, early 2xx and 3xx were still counted: six
    /// in a row led to an ejection in two of three tries). A body that failed towards the destination before any answer
    /// is YARP's 502 instead, and a 5xx is a failure anyway: both still count. When the handler stops the body while
    /// YARP waits for the client's next bytes, the cancelled read makes YARP report
    /// <see cref="ForwarderError.RequestBodyClient"/> instead, with an <see cref="OperationCanceledException"/> from a
    /// client that is still there: the same answer. Or, as the copy's end races YARP's own cancellation once the answer is
    /// sent, <see cref="ForwarderError.RequestBodyCanceled"/>, with the client still there (it failed a test under load in
    /// fresh-clone CI: <c>request_body_canceled=1</c> after a backend's 413). So is any error of the body once the gateway itself reset a gRPC
    /// call's stream after its answer (<see cref="Endpoints.GrpcAnswerReset"/>).
    /// </summary>
    internal static bool IsAnswerBeforeTheBody(HttpContext context, IForwarderErrorFeature error)
        => ((error.Error == ForwarderError.RequestBodyDestination
                || (error.Error == ForwarderError.RequestBodyClient && error.Exception is OperationCanceledException && !context.RequestAborted.IsCancellationRequested)
                || (error.Error == ForwarderError.RequestBodyCanceled && !context.RequestAborted.IsCancellationRequested))
            && context.Response.StatusCode is >= 200 and < 500)
        || (error.Error is ForwarderError.RequestBodyDestination or ForwarderError.RequestBodyClient or ForwarderError.RequestBodyCanceled
            && Endpoints.GrpcAnswerReset.WasResetAfterAnswer(context));

    /// <summary>The client went away, or reading from or writing to it failed.</summary>
    internal static bool IsClientSide(ForwarderError error) => error is ForwarderError.RequestCanceled
        or ForwarderError.RequestBodyCanceled or ForwarderError.RequestBodyClient
        or ForwarderError.ResponseBodyCanceled or ForwarderError.ResponseBodyClient
        or ForwarderError.UpgradeRequestCanceled or ForwarderError.UpgradeRequestClient
        or ForwarderError.UpgradeResponseCanceled or ForwarderError.UpgradeResponseClient;

    /// <summary>The <c>error</c> tag: YARP's <see cref="ForwarderError"/> name in snake case.</summary>
    internal static string TagOf(ForwarderError error) => error switch
    {
        ForwarderError.Request => "request",
        ForwarderError.RequestCreation => "request_creation",
        ForwarderError.RequestTimedOut => "request_timed_out",
        ForwarderError.RequestCanceled => "request_canceled",
        ForwarderError.RequestBodyCanceled => "request_body_canceled",
        ForwarderError.RequestBodyClient => "request_body_client",
        ForwarderError.RequestBodyDestination => "request_body_destination",
        ForwarderError.ResponseHeaders => "response_headers",
        ForwarderError.ResponseBodyCanceled => "response_body_canceled",
        ForwarderError.ResponseBodyClient => "response_body_client",
        ForwarderError.ResponseBodyDestination => "response_body_destination",
        ForwarderError.UpgradeRequestCanceled => "upgrade_request_canceled",
        ForwarderError.UpgradeRequestClient => "upgrade_request_client",
        ForwarderError.UpgradeRequestDestination => "upgrade_request_destination",
        ForwarderError.UpgradeResponseCanceled => "upgrade_response_canceled",
        ForwarderError.UpgradeResponseClient => "upgrade_response_client",
        ForwarderError.UpgradeResponseDestination => "upgrade_response_destination",
        ForwarderError.UpgradeActivityTimeout => "upgrade_activity_timeout",
        ForwarderError.NoAvailableDestinations => "no_available_destinations",
        _ => "other",
    };

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "Proxy error {Error}: route {RouteId}, cluster {ClusterId}, destination {DestinationId}, request id {RequestId}, after {Attempts} attempt(s); answered {Status}. {Reason}. {Suppressed} more like it in the last second.", EventName = "ProxyError")]
        public static partial void DestinationError(ILogger logger, string error, string routeId, string clusterId, string destinationId, string requestId, int attempts, int status, string reason, long suppressed);

        [LoggerMessage(2, LogLevel.Debug, "Client-side proxy error {Error}: route {RouteId}, cluster {ClusterId}, destination {DestinationId}, request id {RequestId}; status {Status}. {Reason}. {Suppressed} more like it in the last second.", EventName = "ProxyClientError")]
        public static partial void ClientError(ILogger logger, string error, string routeId, string clusterId, string destinationId, string requestId, int status, string reason, long suppressed);
    }
}
