using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using YarpGateway.Admission;
using YarpGateway.Configuration;
using YarpGateway.Cors;
using YarpGateway.Demo;
using YarpGateway.Endpoints;
using YarpGateway.ForwardedHeaders;
using YarpGateway.Health;
using YarpGateway.LoadBalancing;
using YarpGateway.OutputCaching;
using YarpGateway.RateLimiting;
using YarpGateway.RequestFiltering;
using YarpGateway.Resilience;
using YarpGateway.Security;
using YarpGateway.Status;
using YarpGateway.Telemetry;
using YarpGateway.WebSockets;

namespace YarpGateway;

/// <summary>Validates the configuration and builds the request pipelines: the one place middleware is composed.</summary>
internal static class GatewayApplicationBuilderExtensions
{
    /// <summary>
    /// What start-up checks before it serves: the configuration files parse, every <see cref="StartupChecks"/> passes, the
    /// routes and clusters validate (and are then the ones YARP will read). Binds nothing; <c>--check</c> runs this alone.
    /// </summary>
    /// <exception cref="GatewayConfigurationException">Lists every error found, with the file that set each.</exception>
    public static async Task ValidateGatewayAsync(this WebApplication app, CancellationToken cancellationToken = default)
    {
        var errors = new List<ConfigError>(ConfigSourceLocator.FindBrokenFiles(app.Configuration));
        var sectionErrors = app.Services.GetRequiredService<StartupChecks>().Find();
        errors.AddRange(sectionErrors);
        try
        {
            await app.Services.GetRequiredService<GatewayConfigProvider>().InitializeAsync(cancellationToken);
        }
        catch (GatewayConfigurationException ex)
        {
            errors.AddRange(ex.Errors.Where(e => !e.FollowsFromABadSection(sectionErrors, app.Configuration)));
        }

        if (errors.Count > 0)
        {
            throw new GatewayConfigurationException(ConfigSourceLocator.WithFiles(app.Configuration, errors));
        }
    }

    /// <summary>
    /// Validates everything first (endpoints, options, routes and clusters) and throws one
    /// <see cref="GatewayConfigurationException"/> listing every error; then maps the management
    /// pipeline (health probes and /metrics) and the proxy pipeline (YARP) onto their own endpoints.
    /// </summary>
    public static async Task UseGatewayAsync(this WebApplication app, CancellationToken cancellationToken = default)
    {
        await app.ValidateGatewayAsync(cancellationToken);

        // The metrics read at each collection from what the gateway keeps anyway (created here, as
        // nothing else asks for them).
        var proxyState = app.Services.GetRequiredService<Yarp.ReverseProxy.IProxyStateLookup>();
        app.Services.GetRequiredService<DestinationMetrics>().Observe(proxyState);
        app.Services.GetRequiredService<HealthMetrics>().Observe(proxyState);
        _ = app.Services.GetRequiredService<ConnectionMetrics>();
        _ = app.Services.GetRequiredService<CertificateMetrics>();
        _ = app.Services.GetRequiredService<ResponseBuffering.ResponseBufferingCounters>();
        _ = app.Services.GetRequiredService<WebSocketMetrics>();
        _ = app.Services.GetRequiredService<SchedulerMetrics>();
        _ = app.Services.GetRequiredService<Discovery.DiscoveryMetrics>();
        _ = app.Services.GetRequiredService<StartupOnlySections>(); // says when a reload changed what takes a restart
        app.Services.GetRequiredService<ConfigMetrics>().ObserveRestartErrors(app.Services.GetRequiredService<RestartCheck>());
        _ = app.Services.GetRequiredService<UnknownSettings>(); // says which keys nothing reads (typos), at start and on reload
        if (BearerAuthentication.IsConfigured(app.Configuration))
        {
            // Built now, from the section checked above; after that, only from an edit BearerOptionsReload has checked.
            _ = app.Services.GetRequiredService<IOptionsMonitor<JwtBearerOptions>>().Get(BearerAuthentication.Scheme);
        }

        // The optional HttpsRedirect endpoint: plain HTTP, every request sent to https; nothing else, never the proxy. Only when
        // configured, so that no other gateway pays for the look at each request's endpoint.
        if (app.Configuration.GetSection($"{GatewayKestrelSetup.EndpointsSection}:{GatewayKestrelSetup.HttpsRedirectEndpointName}").Exists())
        {
            var answer = HttpsRedirect.Answer(app.Services.GetRequiredService<IOptions<HttpsRedirectOptions>>().Value.Port);
            app.MapWhen(static context => GatewayEndpointTag.Of(context) == GatewayEndpointKind.HttpsRedirect, redirect => redirect.Run(answer));
        }

        // Management endpoint: health probes and metrics, nothing else, never the proxy.
        app.MapWhen(
            static context => GatewayEndpointTag.Of(context) == GatewayEndpointKind.Management,
            static management =>
            {
                management.UseGatewayHealth();
                management.UseMetricsEndpoint();
                management.UseStatus();
                management.Run(static context =>
                {
                    context.Response.StatusCode = StatusCodes.Status404NotFound;
                    return Task.CompletedTask;
                });
            });

        // Proxy endpoint.
        // Every middleware here and in the proxy pipeline is added as Func<RequestDelegate, RequestDelegate>,
        // with no per-request allocation. A next of type Func<Task> costs a closure and a delegate per
        // request and middleware, and an upgraded request keeps them for the life of its WebSocket.
        // Requests answered before the request's frame (below) are counted as not proxied where they are answered.
        var requestMetrics = app.Services.GetRequiredService<RequestMetrics>();
        app.Use(app.Services.GetRequiredService<AccessLog>().Middleware); // Gateway:Telemetry:AccessLog: one line per request, off by default
        app.Use(app.Services.GetRequiredService<RequestId>().Middleware); // Gateway:Telemetry:RequestId: X-Request-ID to the backend and back, off by default
        app.Use(next => context =>
        {
            // Over HTTP/2 the scheme comes from the client's :scheme; it may not claim another transport's.
            if (Http2PriorKnowledge.ClaimsWrongScheme(context))
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                requestMetrics.NotProxied(StatusCodes.Status400BadRequest);
                return Task.CompletedTask;
            }

            return next(context);
        });
        app.Use(Http1Framing.Middleware(requestMetrics)); // ambiguous HTTP/1.1 framing and lower-case methods: 400
        app.Use(app.Services.GetRequiredService<RefusedBodyDrain>().Middleware); // a body refused unread is read after the answer, which a reset would lose
        app.Use(app.Services.GetRequiredService<DrainNotice>().Middleware); // Connection: close / GOAWAY once shutdown begins
        app.UseGatewayForwardedHeaders(); // True-Client-IP and the like, and X-Forwarded-For, from trusted peers only
        app.Use(HostHeader.Middleware); // admin.example. is admin.example, for routing's Hosts too
        app.Use(AmbiguousPaths.Middleware(requestMetrics, app.Services.GetRequiredService<IOptions<RequestFilteringOptions>>().Value)); // /public/..;/admin and /public/..%5Cadmin: 400, not /public/... here and /admin in Tomcat or IIS
        app.Use(AsteriskOptions.Middleware(requestMetrics)); // OPTIONS * is answered here, not sent to a backend as OPTIONS /

        // The request's one frame: counted in flight, admitted (global limit, upgrade rate), its duration
        // metric and final error recorded when it ends.
        app.Use(app.Services.GetRequiredService<ProxyRequestFrame>().Middleware);
        app.Use(RoutedWithMergedSlashes.BeforeRouting); // //admin/x is routed as /admin/x, as nginx and the backends that merge slashes read it
        app.UseRouting();
        app.Use(RoutedWithMergedSlashes.AfterRouting); // and goes on as sent
        app.UseRouteTimeouts(); // YARP routes' Timeout / TimeoutPolicy, only on those routes
        app.UseGatewayClientNetworks(); // a route's AllowedNetworks: 403 for other addresses, before any policy spends on them

        // Route policies, each only when configured: CORS answers preflights (no token), then
        // authorization (401/403), rate limits (429, may partition by claim), the output cache.
        app.UseGatewayCors();
        app.Use(NoRouteMatched.Middleware); // 404 that says it is the gateway's, not a backend's (after CORS: a refusal carried there ends there)
        app.UseGatewayAuthorization();
        app.UseGatewayRateLimiting();
        app.UseGatewayOutputCache();
        app.MapReverseProxy(proxy =>
        {
            // YARP's default pipeline, preceded by the WebSocket relay and admission, with drained destinations removed,
            // and with retries around everything that picks and calls a destination. The retries report each attempt to
            // the cluster's passive health policy, which YARP's UsePassiveHealthChecks did in a frame of its own.
            proxy.UseRequestFilter();
            proxy.Use(GrpcAnswerReset.Middleware); // a gRPC answer before the end of the client's stream: reset it then
            proxy.UseWebSocketRelay();
            proxy.UseRouteAndClusterAdmission();
            proxy.UseDrainedDestinationFilter();
            proxy.UseRetries();
            proxy.UseSessionAffinity();
            proxy.UseLoadBalancing();
        });
    }
}
