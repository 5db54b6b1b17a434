using YarpGateway.Configuration;

namespace YarpGateway.Telemetry;

/// <summary>Registration and endpoints for metrics: the meter provider and its exporters, the scrape endpoint, the scheduler probe, the saturation log.</summary>
internal static class TelemetryExtensions
{
    public const string MetricsPath = "/metrics";

    public static IServiceCollection AddGatewayTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddReloadableOptions<TelemetryOptions, TelemetryOptionsValidator>(configuration, TelemetryOptions.SectionName);
        services.AddMetricsExport(configuration);
        services.AddSingleton<SchedulerDelayProbe>();
        services.AddHostedService(sp => sp.GetRequiredService<SchedulerDelayProbe>());
        services.AddSingleton<SocketEngineProbe>();
        services.AddHostedService(sp => sp.GetRequiredService<SocketEngineProbe>());
        services.AddSingleton<SchedulerMetrics>();
        services.AddSingleton<RequestMetrics>();
        services.AddHostedService<KnownSeriesPublisher>();
        services.AddSingleton<SaturationLog>();
        services.AddHostedService(sp => sp.GetRequiredService<SaturationLog>());
        services.AddSingleton<ILoggerProvider, KestrelLogThrottle>();
        services.AddSingleton<Microsoft.Extensions.Options.IConfigureOptions<LoggerFilterOptions>, KestrelLogThrottle.FilterSetup>();
        return services;
    }

    /// <summary>
    /// GET /metrics on the management pipeline (and only there): OpenTelemetry's Prometheus exporter,
    /// Prometheus text format 0.0.4, or OpenMetrics when the scraper asks for it in <c>Accept</c>.
    /// </summary>
    public static void UseMetricsEndpoint(this IApplicationBuilder management)
        => management.UseOpenTelemetryPrometheusScrapingEndpoint(MetricsPath);

    /// <summary>
    /// First in the proxy pipeline after the WebSocket relay: request duration by route, cluster,
    /// destination and status class (upgrades left out, clients that left counted as client_closed),
    /// and the request's final forwarding error, if any (after retries).
    /// </summary>
    public static IReverseProxyApplicationBuilder UseProxyRequestMetrics(this IReverseProxyApplicationBuilder proxy)
    {
        var metrics = proxy.ApplicationServices.GetRequiredService<RequestMetrics>();
        var timeProvider = proxy.ApplicationServices.GetRequiredService<TimeProvider>();
        var errors = proxy.ApplicationServices.GetRequiredService<Resilience.ProxyErrorLog>();
        proxy.Use(next => async context =>
        {
            var started = timeProvider.GetTimestamp();
            try
            {
                await next(context);
            }
            finally
            {
                var feature = context.GetReverseProxyFeature();
                if (!Endpoints.UpgradeRequest.Is(context))
                {
                    // An upgraded request's duration is its WebSocket's lifetime, not a request's: the
                    // WebSocket metrics count those. A client that left before any response is not a 2xx.
                    var clientGone = context.RequestAborted.IsCancellationRequested && !context.Response.HasStarted;
                    metrics.Request(feature.Route.Config.RouteId, feature.Cluster?.Config.ClusterId, feature.ProxiedDestination?.DestinationId, context.Response.StatusCode, clientGone, timeProvider.GetElapsedTime(started));
                }

                errors.Record(context, feature);
            }
        });
        return proxy;
    }
}
