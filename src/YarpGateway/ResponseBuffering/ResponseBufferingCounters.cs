using System.Diagnostics.Metrics;
using YarpGateway.Telemetry;

namespace YarpGateway.ResponseBuffering;

/// <summary>Proxied responses whose copy waits for its client right now: <c>gateway.proxy.responses.waiting</c>.</summary>
internal sealed class ResponseBufferingCounters
{
    private long _waiting;

    public ResponseBufferingCounters(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(GatewayMeter.Name);
        meter.CreateObservableGauge("gateway.proxy.responses.waiting", () => Volatile.Read(ref _waiting), unit: "{response}",
            description: "Proxied response bodies whose copy is waiting for the client to take what was sent (a slow or stalled reader holds it there); each holds no copy buffer meanwhile.");
    }

    public long WaitingNow => Volatile.Read(ref _waiting);

    public void Waiting()
    {
        Interlocked.Increment(ref _waiting);
    }

    public void Done() => Interlocked.Decrement(ref _waiting);
}
