using System.Runtime.InteropServices;

namespace YarpGateway.Health;

/// <summary>
/// SIGUSR1 and SIGUSR2 are logged and otherwise ignored. Their default action ends the process at once
/// (no drain, every connection dropped, nothing logged), and other proxies' operators send them out
/// of habit: nginx and Envoy reopen their log files on SIGUSR1 (logrotate's postrotate scripts send
/// it), HAProxy stops gracefully. The gateway writes its logs to standard output, so there is nothing
/// to reopen; SIGHUP reloads, SIGTERM drains and stops.
/// </summary>
internal sealed partial class UserSignals(ILogger<UserSignals> logger) : IHostedService, IDisposable
{
    // Linux's numbers; PosixSignal names only the signals every platform shares, and takes raw ones on Unix.
    internal static readonly (int Number, string Name)[] Ignored = [(10, "SIGUSR1"), (12, "SIGUSR2")];

    private readonly List<PosixSignalRegistration> _registrations = [];

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (OperatingSystem.IsLinux())
        {
            foreach (var (number, name) in Ignored)
            {
                _registrations.Add(PosixSignalRegistration.Create((PosixSignal)number, context =>
                {
                    context.Cancel = true;
                    Log.Ignored(logger, name);
                }));
                if (EarlySignals.TakeOver((PosixSignal)number) > 0)
                {
                    Log.Ignored(logger, name); // held while the gateway started
                }
            }
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose()
    {
        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "{Signal} received and ignored: the gateway writes its logs to standard output, so there are no log files to reopen. SIGHUP reads the configuration again; SIGTERM drains and stops.", EventName = "SignalIgnored")]
        public static partial void Ignored(ILogger logger, string signal);
    }
}
