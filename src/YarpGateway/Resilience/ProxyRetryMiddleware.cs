using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Http.Timeouts;
using Microsoft.Extensions.ObjectPool;
using Polly;
using Polly.Retry;
using Yarp.ReverseProxy.Configuration;
using YarpGateway.Configuration;
using YarpGateway.Telemetry;

namespace YarpGateway.Resilience;

/// <summary>
/// Retries in the proxy pipeline, before session affinity and load balancing, so that every retry
/// runs load balancing again over the destinations that have not failed this request. A Polly.Core
/// retry pipeline supplies exponential backoff with jitter; <see cref="ShouldRetry"/> adds the rules:
/// only repeatable requests, only before the response starts, only within the cluster's retry budget.
/// After the last attempt, a timeout becomes a 504 whose body names the timeout, and YARP's own 502 or 503 gets a body naming
/// its cause (<see cref="ForwardingFailure"/>).
/// </summary>
internal sealed partial class ProxyRetryMiddleware(
    ReloadableOptions<ResilienceOptions> options,
    ReloadableOptions<Admission.AdmissionOptions> admission,
    Telemetry.RequestId requestIds,
    RetryBudgets budgets,
    ResilienceMetrics metrics,
    PassiveHealthReporter passiveHealth,
    TimeProvider timeProvider,
    ILogger<ProxyRetryMiddleware> logger)
{
    private const int AttemptsKept = 256;

    private static readonly ResiliencePropertyKey<RetryAttempt> AttemptKey = new("YarpGateway.RetryAttempt");

    private readonly ConcurrentDictionary<(int MaxRetries, TimeSpan Base, TimeSpan Max), ResiliencePipeline<bool>> _pipelines = new();
    private readonly ConditionalWeakTable<RouteConfig, ResolvedSettings> _settings = new();
    private readonly TimeProvider _timeProvider = timeProvider;

    // Attempts given back as requests end (RetryAttempt.EndRequest): a proxied request allocated one, about 150 bytes. The pool
    // keeps at most AttemptsKept (about 40 KB), whatever the number of connections; more in flight at once are allocated.
    private readonly DefaultObjectPool<RetryAttempt> _attempts = new(new RetryAttempt.Policy(metrics), AttemptsKept);
    private readonly LogThrottle _logThrottle = new(timeProvider, logger);

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var attempt = Start(context);

        // The first attempt runs directly, in this frame: nearly every request succeeds at once, and
        // entering the Polly pipeline cost ~40 µs per request on one core (bench/results). Polly takes
        // over only when a retry is actually needed. (A frame of its own would cost every proxied
        // request an allocation, and an upgraded request would hold it for its WebSocket's life.)
        // The request's outer frame hands its own end of the request to this frame (RetryAttempt.TakeRequestEnd), which waits
        // for the request anyway: done last, whatever happened.
        try
        {
            // What lives across the awaits is in the attempt (the frame is allocated per request).
            BeginAttempt(attempt);
            await next(attempt.Context);
            if (EndAttempt(attempt) && TryTakeRetry(attempt))
            {
                await RetryAsync(attempt, next, options.Current, attempt.Context.RequestAborted);
            }

            await FinishAsync(attempt);
        }
        finally
        {
            attempt.Dispose();
            if (attempt.EndRequest())
            {
                // The request's end is done and nothing else reads the attempt: back to the pool, out of the request's features
                // first, so that nothing later in this request can see the next one's.
                attempt.Context.Features.Set<RetryAttempt>(null);
                _attempts.Return(attempt);
            }
        }
    }

    private RetryAttempt Start(HttpContext context)
    {
        var proxy = context.GetReverseProxyFeature();
        var current = options.Current;
        var clusterConfig = proxy.Cluster?.Config;
        var settings = SettingsFor(proxy.Route.Config, clusterConfig, current);
        var budget = budgets.For(clusterConfig?.ClusterId ?? string.Empty, current.RetryBudget);
        budget.RecordRequest();

        var (retryUnsent, repeatable) = Classify(context, settings);
        var attempt = _attempts.Get();
        attempt.Start(context, proxy, settings, budget, retryUnsent, repeatable);
        context.Features.Set(attempt);
        return attempt;
    }

    // A retry. Returns whether another attempt could succeed.
    private async Task<bool> RunAttemptAsync(RetryAttempt attempt, RequestDelegate next)
    {
        BeginAttempt(attempt);
        await next(attempt.Context);
        return EndAttempt(attempt);
    }

    /// <summary>
    /// Each attempt is reported to the cluster's passive health policy (outlier ejection by default), then classified.
    /// This is what YARP's passive health middleware did, the last step of the proxy pipeline, in an async frame of its
    /// own on every request (about 115 bytes); here it runs in this frame, at the same point: after the destination
    /// answered or failed, before the attempt's failure is classified.
    /// </summary>
    private bool EndAttempt(RetryAttempt attempt)
    {
        if (!WebSockets.WebSocketRelay.Carries(attempt.Context))
        {
            passiveHealth.Report(attempt.Context, attempt.Proxy, attempt.TryTimedOut); // a WebSocket's is reported when its copy ends
        }

        return attempt.End();
    }

    private void BeginAttempt(RetryAttempt attempt)
    {
        attempt.Begin(_timeProvider);
        metrics.Attempt(attempt.Proxy.Cluster?.Config.ClusterId);
    }

    // Retries 1..MaxRetries: the first after a jittered base delay, the rest through the Polly
    // pipeline, whose exponential backoff (with jitter) continues from twice the base delay.
    private async Task RetryAsync(RetryAttempt attempt, RequestDelegate next, ResilienceOptions current, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(current.RetryBaseDelay * (0.5 + Random.Shared.NextDouble()), _timeProvider, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        if (attempt.Settings.MaxRetries == 1)
        {
            await RunAttemptAsync(attempt, next);
            return;
        }

        var pipeline = PipelineFor(attempt.Settings.MaxRetries - 1, current);
        var resilienceContext = ResilienceContextPool.Shared.Get(cancellationToken);
        resilienceContext.Properties.Set(AttemptKey, attempt);
        try
        {
            await pipeline.ExecuteAsync(
                static (rc, state) => new ValueTask<bool>(state.Self.RunAttemptAsync(state.Attempt, state.Next)),
                resilienceContext,
                (Self: this, Attempt: attempt, Next: next));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            ResilienceContextPool.Shared.Return(resilienceContext);
        }
    }

    private ValueTask<bool> ShouldRetry(RetryPredicateArguments<bool> args)
        => ValueTask.FromResult(args.Outcome.Result is true && TryTakeRetry(args.Context.Properties.GetValue(AttemptKey, null!)));

    // Attempts allowed: 1 + MaxRetries. A held-back status already took its retry from the budget;
    // a transport failure takes one now.
    private bool TryTakeRetry(RetryAttempt attempt)
    {
        if (attempt.Number > attempt.Settings.MaxRetries)
        {
            return false;
        }

        if (!attempt.RetryReserved && !attempt.Budget.TryAcquireRetry())
        {
            metrics.RetryBudgetExhausted(attempt.Proxy.Cluster?.Config.ClusterId);
            return false;
        }

        metrics.Retry(attempt.Proxy.Cluster?.Config.ClusterId, Reason(attempt));
        return true;
    }

    private async Task FinishAsync(RetryAttempt attempt)
    {
        var context = attempt.Context;
        var clusterId = attempt.Proxy.Cluster?.Config.ClusterId ?? string.Empty;
        if (attempt.LastFailure == AttemptFailure.BackendConnectionLimit)
        {
            // The gateway's own limit (logged and counted by it): as an admission refusal, 503 with Retry-After.
            if (!context.Response.HasStarted && !context.RequestAborted.IsCancellationRequested)
            {
                context.Response.Clear();
                Admission.RequestAdmission.Reject(context, admission.Current.RetryAfter);
                await Admission.RequestAdmission.WriteRefusalAsync(context);
            }

            return;
        }

        // The route's timeout cancels the request's token (the timeouts middleware's, linked to the client's), so only a
        // cancelled request needs the lookup, a miss on nearly every other (no timeout policy: no feature).
        var routeTimedOut = context.RequestAborted.IsCancellationRequested
            && context.Features.Get<IHttpRequestTimeoutFeature>()?.RequestTimeoutToken.IsCancellationRequested == true;
        var kind = routeTimedOut ? "route"
            : attempt.LastFailure switch
            {
                AttemptFailure.ConnectTimeout => "connect",
                AttemptFailure.TryTimeout => "try",
                AttemptFailure.ActivityTimeout => "activity",
                _ => null,
            };
        if (kind is null)
        {
            if (ForwardingFailure(context, attempt.LastFailure) is { } said)
            {
                context.Response.Headers.CacheControl = "no-store"; // a cache in front must not keep an outage's answer
                await WriteChunkedAsync(context, said);
            }

            return;
        }

        attempt.TimeoutKind = kind;
        metrics.Timeout(clusterId, kind);
        var destination = attempt.Proxy.ProxiedDestination?.DestinationId ?? "-";
        if (_logThrottle.ShouldLog(kind, out var suppressed))
        {
            // After the response started, nothing can be answered: YARP reset the stream (HTTP/2) or
            // the connection, so that the client does not take the part for the whole.
            var outcome = context.Response.HasStarted ? "the response had started, so it was cut short" : "answered 504";
            Log.Timeout(logger, kind, attempt.Proxy.Route.Config.RouteId, clusterId, destination, requestIds.Of(context), attempt.Number, outcome, suppressed);
        }

        if (!context.Response.HasStarted && !(context.RequestAborted.IsCancellationRequested && !routeTimedOut))
        {
            context.Response.Clear();
            context.Response.StatusCode = StatusCodes.Status504GatewayTimeout;
            context.Response.Headers.CacheControl = "no-store";
            await WriteChunkedAsync(context, $"gateway: {kind} timeout\n");
        }
    }

    /// <summary>
    /// What the body of the gateway's own 502 or 503 says, when YARP answered one for a forwarding error and nothing of it has
    /// gone out: it had none, and a client (or an operator with curl) could not tell it from a backend's own 502, where nginx,
    /// HAProxy and Envoy each name the cause. The category only: the log line names the destination and the exception.
    /// Null for anything else (a backend's own status, a client that went away, a response that started). The last attempt's
    /// failure, as <see cref="RetryAttempt"/> classified it from the same error, tells a connection never made from the rest.
    /// </summary>
    internal static string? ForwardingFailure(HttpContext context, AttemptFailure failure)
    {
        if (failure is not (AttemptFailure.ConnectFailure or AttemptFailure.ConnectionReset or AttemptFailure.Other)
            || context.Response.HasStarted || context.RequestAborted.IsCancellationRequested
            || context.Response.StatusCode is not (StatusCodes.Status502BadGateway or StatusCodes.Status503ServiceUnavailable)
            || context.Features.Get<Yarp.ReverseProxy.Forwarder.IForwarderErrorFeature>() is not { } error)
        {
            return null;
        }

        return error.Error switch
        {
            Yarp.ReverseProxy.Forwarder.ForwarderError.NoAvailableDestinations => "gateway: no backend of this route is available (none healthy, or all ejected after failures)\n",
            Yarp.ReverseProxy.Forwarder.ForwarderError.Request when failure == AttemptFailure.ConnectFailure => "gateway: the backend could not be reached\n",
            Yarp.ReverseProxy.Forwarder.ForwarderError.Request or Yarp.ReverseProxy.Forwarder.ForwarderError.ResponseHeaders => "gateway: the backend sent no usable answer (its connection failed, or the answer was malformed)\n",
            Yarp.ReverseProxy.Forwarder.ForwarderError.RequestBodyDestination => "gateway: the backend stopped reading the request's body\n",
            _ => null,
        };
    }

    /// <summary>
    /// A 502's or 504's one line, without a length (unlike <see cref="Endpoints.TextAnswer"/>): the answer then ends with the
    /// request, after its error is logged and counted (<see cref="Endpoints.ProxyRequestFrame"/>), so that what a client
    /// has seen the end of is in the log and the metrics. With a length the client had it whole before, and a test that
    /// read the log line at once missed it against the native AOT build. Not with the request's token: a route timeout
    /// has cancelled it.
    /// </summary>
    private static Task WriteChunkedAsync(HttpContext context, string text)
    {
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(text, CancellationToken.None);
    }

    private static string Reason(RetryAttempt attempt) => attempt.LastFailure switch
    {
        AttemptFailure.Status => "status_" + attempt.Context.Response.StatusCode.ToString(System.Globalization.CultureInfo.InvariantCulture),
        AttemptFailure.ConnectFailure => "connect_failure",
        AttemptFailure.ConnectTimeout => "connect_timeout",
        AttemptFailure.ConnectionReset => "connection_reset",
        AttemptFailure.TryTimeout => "try_timeout",
        _ => "other",
    };

    /// <summary>
    /// Repeatable (sent again on a reset, a try timeout or a held-back status): GET, HEAD, OPTIONS, TRACE, and PUT/DELETE
    /// only with <c>RetryIdempotent</c>, with no body or with one small enough (<see cref="ResilienceOptions.MaxRetryBodyBytes"/>)
    /// to be buffered and sent again; never POST or PATCH. A WebSocket handshake too (an HTTP/1.1 upgrade's GET, or an HTTP/2
    /// extended CONNECT), as nginx's default <c>proxy_next_upstream error timeout</c> retries it: until the backend answers,
    /// nothing of it has reached the client (the relay takes the client's side only on a 101 or a 200), and it carries no body
    /// (YARP sends an upgrade without content; the extended CONNECT's tunnel is copied only once the backend has answered).
    /// Retried when unsent (no connection could be made, so the destination saw nothing, and a body was not begun): every
    /// request, as nginx's <c>proxy_next_upstream</c>, HAProxy's <c>retry-on conn-failure</c> and Envoy's
    /// <c>connect-failure</c> do.
    /// </summary>
    private static (bool RetryUnsent, bool Repeatable) Classify(HttpContext context, ResilienceSettings settings)
    {
        if (Endpoints.UpgradeRequest.Is(context))
        {
            // Any other method asking for an upgrade is not one YARP upgrades (only GET and CONNECT are), nor idempotent.
            return (true, HttpMethods.IsGet(context.Request.Method) || HttpMethods.IsConnect(context.Request.Method));
        }

        var method = context.Request.Method;
        var idempotent = HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method) || HttpMethods.IsTrace(method)
            || (settings.RetryIdempotent && (HttpMethods.IsPut(method) || HttpMethods.IsDelete(method)));
        if (!idempotent || !RetryAttempt.HasBody(context))
        {
            return (true, idempotent);
        }

        if (settings.MaxRetryBodyBytes > 0 && context.Request.ContentLength is { } length && length <= settings.MaxRetryBodyBytes)
        {
            context.Request.EnableBuffering(settings.MaxRetryBodyBytes, settings.MaxRetryBodyBytes);
            return (true, true);
        }

        return (true, false);
    }

    // Keyed by the route's reference: RouteConfig is a record whose hash code walks every field,
    // metadata and transforms included (0.7 % of the CPU per request when it was a dictionary key).
    // A route's entry is current while its cluster config and the options are the same objects;
    // a config reload makes new ones, and the table lets go of the old routes by itself.
    private ResilienceSettings SettingsFor(RouteConfig route, ClusterConfig? cluster, ResilienceOptions current)
    {
        if (_settings.TryGetValue(route, out var resolved) && ReferenceEquals(resolved.Cluster, cluster) && ReferenceEquals(resolved.Options, current))
        {
            return resolved.Settings;
        }

        resolved = new ResolvedSettings(cluster, current, ResilienceSettings.Resolve(current, cluster?.Metadata, route.Metadata));
        _settings.AddOrUpdate(route, resolved);
        return resolved.Settings;
    }

    private ResiliencePipeline<bool> PipelineFor(int maxRetries, ResilienceOptions current)
        => _pipelines.GetOrAdd((maxRetries, current.RetryBaseDelay, current.RetryMaxDelay), static (key, self) =>
            new ResiliencePipelineBuilder<bool> { TimeProvider = self._timeProvider }
                .AddRetry(new RetryStrategyOptions<bool>
                {
                    MaxRetryAttempts = key.MaxRetries,
                    BackoffType = DelayBackoffType.Exponential,
                    UseJitter = true,
                    Delay = key.Base * 2, // the first retry (before the pipeline) waited about Base
                    MaxDelay = key.Max,
                    ShouldHandle = self.ShouldRetry,
                })
                .Build(), this);

    private sealed class ResolvedSettings(ClusterConfig? cluster, ResilienceOptions options, ResilienceSettings settings)
    {
        public ClusterConfig? Cluster { get; } = cluster;

        public ResilienceOptions Options { get; } = options;

        public ResilienceSettings Settings { get; } = settings;
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "Proxy {Kind} timeout: route {RouteId}, cluster {ClusterId}, destination {DestinationId}, request id {RequestId}, after {Attempts} attempt(s); {Outcome} ({Suppressed} similar suppressed in the last second).", EventName = "ProxyTimeout")]
        public static partial void Timeout(ILogger logger, string kind, string routeId, string clusterId, string destinationId, string requestId, int attempts, string outcome, long suppressed);
    }
}
