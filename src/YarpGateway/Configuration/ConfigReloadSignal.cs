using System.Runtime.InteropServices;
using YarpGateway.Endpoints;

namespace YarpGateway.Configuration;

/// <summary>
/// SIGHUP reads the configuration again now, as it does for nginx: every reloadable JSON file (the
/// appsettings files and <c>--config</c>) whether or not it looks changed, and the HTTPS endpoints'
/// certificate files. A change then applies (or is rejected) exactly as a saved edit does, and one
/// line says what came of it. Without this the runtime leaves SIGHUP at its default, which ends the
/// process at once: no drain, every connection dropped, nothing logged.
/// </summary>
internal sealed partial class ConfigReloadSignal(
    IConfiguration configuration,
    GatewayConfigProvider proxyConfig,
    RestartCheck restartCheck,
    CertificateReloader certificates,
    IHostApplicationLifetime lifetime,
    ILogger<ConfigReloadSignal> logger) : IHostedService, IDisposable
{
    private readonly CancellationTokenSource _stopped = new();
    private PosixSignalRegistration? _registration;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // On Windows SIGHUP stands for the console window closing, which must still end the process.
        if (!OperatingSystem.IsWindows())
        {
            _registration = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
            {
                context.Cancel = true;
                _ = ReloadAsync(_stopped.Token);
            });
            if (Health.EarlySignals.TakeOver(PosixSignal.SIGHUP) > 0)
            {
                // Held while starting (EarlySignals): answered once started, in case a file changed after the start read it.
                lifetime.ApplicationStarted.Register(() => _ = ReloadAsync(_stopped.Token));
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>What SIGHUP does: read everything again, wait for the proxy configuration's reload, say what came of it.</summary>
    internal async Task ReloadAsync(CancellationToken cancellationToken)
    {
        try
        {
            var before = proxyConfig.Revision;
            List<string> files = [];
            if (configuration is IConfigurationRoot root)
            {
                foreach (var provider in root.Providers.OfType<LastGoodJsonConfigurationSource.Provider>())
                {
                    if (provider.ReadNow() && provider.ExistingFilePath is { } path)
                    {
                        files.Add(path);
                    }
                }
            }

            certificates.Check();

            // The files' reload events have started a reload already; this one waits for it and
            // finds nothing more to do, unless the events were lost.
            await proxyConfig.ReloadAsync(cancellationToken);
            var revision = proxyConfig.Revision;
            var outcome = proxyConfig.RejectedReason is { } rejected
                ? $"the proxy configuration is rejected and revision {revision} keeps serving: {rejected}"
                : revision != before
                    ? $"revision {revision} of the proxy configuration applied (ConfigReloaded lists the changes)."
                    : $"the routes and clusters are unchanged; revision {revision} keeps serving.";
            Log.Signaled(logger, files.Count, string.Join(", ", files), outcome, DescribeRestart());
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            // A signal must never take the gateway down; whatever was serving keeps serving.
            Log.Failed(logger, ex);
        }
    }

    /// <summary>Whether the files as they are would start a new gateway, naming the errors the outcome has not named already.</summary>
    private string DescribeRestart()
    {
        var errors = restartCheck.Errors;
        if (errors.Count == 0)
        {
            return "A restart would start with the files as they are.";
        }

        var named = proxyConfig.RefusedAtStart; // in the outcome already, as the proxy configuration's rejection
        var others = errors.Where(e => !named.Contains(e)).ToList();
        return others.Count == 0
            ? $"A restart would fail with the files as they are, on the same {errors.Count} error(s)."
            : $"A restart would fail with the files as they are ({errors.Count} error(s)): {(others.Count < errors.Count ? "those above, and " : string.Empty)}{string.Join(" ", others)}";
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose()
    {
        _registration?.Dispose();
        _stopped.Cancel();
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "SIGHUP: read {FileCount} configuration file(s) again ({Files}), and the TLS certificate files; {Outcome} {Restart}", EventName = "ConfigReloadSignaled")]
        public static partial void Signaled(ILogger logger, int fileCount, string files, string outcome, string restart);

        [LoggerMessage(2, LogLevel.Error, "SIGHUP: reading the configuration again failed unexpectedly; the last good configuration keeps serving.", EventName = "ConfigReloadSignalFailed")]
        public static partial void Failed(ILogger logger, Exception exception);
    }
}
