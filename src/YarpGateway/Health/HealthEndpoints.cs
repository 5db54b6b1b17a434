using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using YarpGateway.Configuration;

namespace YarpGateway.Health;

/// <summary>The Kubernetes probe paths served on the management endpoint.</summary>
internal static partial class HealthEndpoints
{
    public const string LivePath = "/healthz/live";
    public const string ReadyPath = "/healthz/ready";
    public const string StartupPath = "/healthz/startup";

    public const string LiveTag = "live";
    public const string ReadyTag = "ready";
    public const string StartupTag = "startup";

    public static IServiceCollection AddGatewayHealth(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddReloadableOptions<HealthOptions, HealthOptionsValidator>(configuration, HealthOptions.SectionName);
        services.AddSingleton<IProxyConfigRule, ReadinessGate>();
        services.AddReloadableOptions<ShutdownOptions, ShutdownOptionsValidator>(configuration, ShutdownOptions.SectionName);
        services.AddSingleton<HealthMetrics>();
        services.AddSingleton<DrainNotice>();
        services.AddSingleton<HealthChangeLog>();
        ActiveHealthLog.Decorate(services); // after AddReverseProxy, which registers YARP's policies
        services.AddSingleton<Microsoft.Extensions.Options.IConfigureOptions<LoggerFilterOptions>, HealthLogFilters>();
        services.AddSingleton<LivenessCheck>();
        services.AddHostedService<DrainCoordinator>();
        services.AddHostedService<UserSignals>(); // SIGUSR1/2 logged, not the end of the process
        services.AddSingleton<Microsoft.Extensions.Options.IConfigureOptions<HostOptions>, ShutdownTimeoutSetup>();
        services.AddHealthChecks()
            .AddCheck<LivenessCheck>("process", tags: [LiveTag])
            .AddCheck<ConfigHealthCheck>("config", tags: [ReadyTag, StartupTag])
            .AddCheck<ShutdownHealthCheck>("shutdown", tags: [ReadyTag])
            .AddCheck<DestinationsHealthCheck>("destinations", tags: [ReadyTag]);
        return services;
    }

    /// <summary>Adds the three probes to a (management-only) pipeline.</summary>
    public static void UseGatewayHealth(this IApplicationBuilder app)
    {
        var options = app.ApplicationServices.GetRequiredService<ReloadableOptions<HealthOptions>>();
        var logger = app.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(HealthEndpoints));
        if (options.Current.RequireAvailableDestinations is not null)
        {
            Log.RequireAvailableDestinationsRemoved(logger);
        }

        // Valid, so not an error (a test stands in for a wedged scheduler with a tiny limit), but a pod restarted for
        // being busy drops every connection on it: said at start and on every reload that sets such a limit.
        WarnOfRiskyLimits(logger, options.Current);
        options.Changed += current => WarnOfRiskyLimits(logger, current);

        var changes = app.ApplicationServices.GetRequiredService<HealthChangeLog>();
        app.UseHealthChecks(LivePath, Options(LiveTag, changes));
        app.UseHealthChecks(ReadyPath, Options(ReadyTag, changes));
        app.UseHealthChecks(StartupPath, Options(StartupTag, changes));
    }

    private static void WarnOfRiskyLimits(ILogger logger, HealthOptions options)
    {
        foreach (var risk in options.RiskyLivenessLimits())
        {
            Log.LivenessLimitLow(logger, risk);
        }
    }

    private static HealthCheckOptions Options(string tag, HealthChangeLog changes) => new()
    {
        Predicate = check => check.Tags.Contains(tag),
        ResponseWriter = (context, report) =>
        {
            changes.Observe(report);
            return HealthResponseWriter.WriteAsync(context, report);
        },
        AllowCachingResponses = false,
    };

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "Gateway:Health:RequireAvailableDestinations is set but no longer read: readiness does not depend on backends, so that one dead cluster cannot take every replica out of the Service. A cluster whose outage should fail readiness sets Metadata \"ReadinessRequiresDestination\": \"true\". Remove the setting to silence this.", EventName = "HealthOptionRemoved")]
        public static partial void RequireAvailableDestinationsRemoved(ILogger logger);

        [LoggerMessage(2, LogLevel.Warning, "{Risk} Kubernetes would restart a pod that is only busy, dropping every connection on it.", EventName = "LivenessLimitLow")]
        public static partial void LivenessLimitLow(ILogger logger, string risk);
    }
}
