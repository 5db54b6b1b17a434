using System.Runtime.InteropServices;
using YarpGateway.Configuration;
using YarpGateway.Endpoints;

namespace YarpGateway.Health;

/// <summary>
/// The SIGTERM phases, logged with counts:
/// 1. readiness answers 503 at once (<see cref="ShutdownHealthCheck"/> reads the stopping token), and
///    clients are told to go elsewhere (<see cref="DrainNotice"/>: <c>Connection: close</c>, GOAWAY);
/// 2. the gateway keeps accepting and serving for <see cref="ShutdownOptions.DrainDelay"/>, while
///    Kubernetes takes the pod out of its endpoints;
/// 3. Kestrel stops accepting, closes idle keep-alive connections and lets in-flight requests finish
///    for up to <see cref="ShutdownOptions.Timeout"/> (the host's shutdown timeout is set to cover both);
/// 4. the process exits 0. A second SIGTERM ends the drain at once: open proxy connections are
///    aborted, so Kestrel's wait ends and the process exits.
/// Participants (the WebSocket feature's 1001 close, when it exists) run at the start of phase 3.
/// </summary>
internal sealed partial class DrainCoordinator(
    ReloadableOptions<ShutdownOptions> options,
    TrafficCounters traffic,
    DrainNotice notice,
    IEnumerable<IDrainParticipant> participants,
    TimeProvider timeProvider,
    ILogger<DrainCoordinator> logger) : IHostedLifecycleService, IDisposable
{
    private readonly CancellationTokenSource _forced = new();
    private PosixSignalRegistration? _secondSigterm;
    private int _stopping;
    private int _disposed;

    public Task StartingAsync(CancellationToken cancellationToken)
    {
        // The host handles the first SIGTERM (it starts the shutdown and cancels the signal's default).
        // This one acts on the second.
        _secondSigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSigterm);
        return Task.CompletedTask;
    }

    /// <summary>
    /// A SIGTERM: during the drain, it ends the drain at once. One that comes as the host disposes this (the process's
    /// last moments; the registration's disposal does not wait for a handler already running) finds nothing left to end,
    /// where it cancelled the disposed token and the exception, on the signal's thread, ended the process.
    /// </summary>
    internal void OnSigterm(PosixSignalContext context)
    {
        if (Volatile.Read(ref _stopping) != 1 || Volatile.Read(ref _disposed) == 1)
        {
            return;
        }

        context.Cancel = true;
        try
        {
            _forced.Cancel();
        }
        catch (ObjectDisposedException)
        {
            return; // disposed meanwhile
        }

        Log.Forced(logger, traffic.AbortAll());
    }

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        Interlocked.Exchange(ref _stopping, 1);
        var current = options.Current;
        var goAway = notice.Begin(traffic.Open);
        Log.Draining(logger, current.DrainDelay, traffic.InFlightRequests, traffic.OpenConnections, traffic.UpgradedConnections, goAway);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _forced.Token);
        try
        {
            await Task.Delay(current.DrainDelay, timeProvider, stop.Token);
        }
        catch (OperationCanceledException)
        {
        }

        Log.StopAccepting(logger, current.Timeout, traffic.InFlightRequests, traffic.OpenConnections, traffic.UpgradedConnections);
        foreach (var participant in participants)
        {
            await participant.DrainAsync(stop.Token);
        }
    }

    public Task StoppedAsync(CancellationToken cancellationToken)
    {
        Log.Stopped(logger, traffic.InFlightRequests, traffic.OpenConnections, traffic.UpgradedConnections);
        return Task.CompletedTask;
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose()
    {
        Volatile.Write(ref _disposed, 1);
        _secondSigterm?.Dispose();
        _forced.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Shutdown phase 1/3: readiness is 503; still accepting for {DrainDelay}, with Connection: close on every HTTP/1.1 response and GOAWAY sent to {GoAway} HTTP/2 connections. In flight: {InFlight} requests, {Connections} open connections, {Upgraded} upgraded.", EventName = "DrainStarted")]
        public static partial void Draining(ILogger logger, TimeSpan drainDelay, long inFlight, long connections, long upgraded, int goAway);

        [LoggerMessage(2, LogLevel.Information, "Shutdown phase 2/3: no longer accepting; waiting up to {Timeout} for {InFlight} in-flight requests ({Connections} open connections, {Upgraded} upgraded).", EventName = "DrainStopAccepting")]
        public static partial void StopAccepting(ILogger logger, TimeSpan timeout, long inFlight, long connections, long upgraded);

        [LoggerMessage(3, LogLevel.Information, "Shutdown phase 3/3: stopped. Left unfinished: {InFlight} requests, {Connections} connections, {Upgraded} upgraded.", EventName = "DrainStopped")]
        public static partial void Stopped(ILogger logger, long inFlight, long connections, long upgraded);

        [LoggerMessage(4, LogLevel.Warning, "Second SIGTERM: ending the drain now; aborted {Connections} open connections.", EventName = "DrainForced")]
        public static partial void Forced(ILogger logger, int connections);
    }
}

/// <summary>Something that must close gracefully when the gateway stops accepting (e.g. WebSockets sending 1001).</summary>
internal interface IDrainParticipant
{
    Task DrainAsync(CancellationToken cancellationToken);
}
