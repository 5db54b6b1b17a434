namespace YarpGateway.Telemetry;

/// <summary>
/// A feature's metrics that export their known label values at 0 before the first event, so that an
/// alert on <c>increase()</c> sees the first event as one (a series that appears at 1 shows none).
/// A counter's measurement before the meter provider listens is lost, so <see cref="Publish"/> runs
/// once the host has started (the provider starts with it) and again whenever the feature learns of
/// new label values (a reload's new clusters, a new limit).
/// </summary>
internal interface IKnownSeries
{
    void Publish();
}

/// <summary>Publishes every feature's known series once the host, and with it the meter provider, has started.</summary>
internal sealed class KnownSeriesPublisher(IEnumerable<IKnownSeries> features) : IHostedLifecycleService
{
    public Task StartedAsync(CancellationToken cancellationToken)
    {
        foreach (var feature in features)
        {
            feature.Publish();
        }

        return Task.CompletedTask;
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
