using YarpGateway.Configuration;

namespace YarpGateway.Telemetry;

/// <summary>Registration and endpoints for metrics: the meter provider and its exporters, the scrape endpoint, the scheduler probe, the saturation log.</summary>
internal static class TelemetryExtensions
{
    public const string MetricsPath = "/metrics";

    public static IServiceCollection AddGatewayTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddReloadableOptions<TelemetryOptions, TelemetryOptionsValidator>(configuration, TelemetryOptions.SectionName);
        EventNameJsonConsoleFormatter.Replace(services); // the json console format names each event
        LoggingSettings.CheckBeforeApplying(services, configuration); // a log level that is not one is an error at start, and a refused reload
        services.AddMetricsExport(configuration);
        services.AddSingleton<Yarp.ReverseProxy.Configuration.IConfigChangeListener, SeriesLimitCheck>();
        services.AddSingleton<SchedulerDelayProbe>();
        services.AddHostedService(sp => sp.GetRequiredService<SchedulerDelayProbe>());
        services.AddSingleton<SocketEngineProbe>();
        services.AddHostedService(sp => sp.GetRequiredService<SocketEngineProbe>());
        services.AddSingleton<SchedulerMetrics>();
        services.AddSingleton<RequestMetrics>();
        services.AddHostedService<KnownSeriesPublisher>();
        services.AddSingleton(sp => new AccessLogWriter(Console.OpenStandardOutput(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<AccessLogWriter>>()));
        services.AddHostedService(sp => sp.GetRequiredService<AccessLogWriter>());
        services.AddSingleton<AccessLog>();
        services.AddSingleton<RequestId>();
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
}
