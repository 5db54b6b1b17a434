namespace YarpGateway.Configuration;

/// <summary>
/// Until the gateway has started, the host's own error lines are left out: when its start fails (a
/// port taken, a certificate that does not load) the host logged "Hosting failed to start" with the
/// whole stack trace, some thirty lines, before <see cref="StartupErrors"/> printed the one line that
/// says what to do. Nothing is lost: every such failure is thrown on to <c>Program</c>, which prints
/// that line, or the runtime prints the exception itself. Once started, the host's lines are logged
/// as configured (a background service that fails is one of them).
/// </summary>
internal sealed class HostStartLog(IHostApplicationLifetime lifetime) : IHostedService
{
    internal const string HostCategory = "Microsoft.Extensions.Hosting.Internal.Host";

    private volatile bool _started;

    /// <summary>Adds the filter to the host's category and the service that lifts it once the application has started.</summary>
    public static void Quiet(WebApplicationBuilder builder)
    {
        HostStartLog? self = null;
        builder.Logging.AddFilter(HostCategory, level => level >= LogLevel.Information && (level < LogLevel.Error || self?._started == true));
        builder.Services.AddSingleton(sp => self = ActivatorUtilities.CreateInstance<HostStartLog>(sp));
        builder.Services.AddHostedService(sp => sp.GetRequiredService<HostStartLog>());
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        lifetime.ApplicationStarted.Register(static state => ((HostStartLog)state!)._started = true, this);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
