using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.Extensions.Time.Testing;
using YarpGateway.Endpoints;

namespace YarpGateway.Tests.Endpoints;

public class ShutdownHeartbeatTests
{
    [Fact]
    public async Task WhileKestrelTicks_OnlyKestrelTicks_EvenWhenStopping()
    {
        var (clock, lifetime, heartbeat) = Create();
        var kestrel = new KestrelHeartbeat();
        var ticks = 0;
        var connection = await OpenAsync(heartbeat, kestrel, http2: true, registered => registered.OnHeartbeat(_ => ticks++, new object()));

        lifetime.StopApplication();
        for (var i = 0; i < 5; i++)
        {
            clock.Advance(ShutdownHeartbeat.Interval);
            kestrel.Tick();
        }

        Assert.Equal(5, ticks);
        Assert.Equal(0, heartbeat.Ticks);
        connection.End();
        await connection.Running;
    }

    [Fact]
    public async Task KestrelStopsTicking_ConnectionsAreTickedOnceASecond_FromTheStopOnly()
    {
        var (clock, lifetime, heartbeat) = Create();
        var kestrel = new KestrelHeartbeat();
        var ticks = 0;
        var connection = await OpenAsync(heartbeat, kestrel, http2: true, registered => registered.OnHeartbeat(_ => ticks++, new object()));

        // Not stopping: nothing ticks a connection Kestrel leaves alone.
        clock.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(0, ticks);

        lifetime.StopApplication();
        for (var i = 0; i < 4; i++)
        {
            clock.Advance(ShutdownHeartbeat.Interval);
        }

        Assert.Equal(4, ticks);
        Assert.Equal(4, heartbeat.Ticks);

        // The connection ended: no more ticks for it.
        connection.End();
        await connection.Running;
        clock.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(4, ticks);
    }

    [Fact]
    public async Task Http1Connection_KeepsKestrelsFeature()
    {
        var (_, _, heartbeat) = Create();
        var kestrel = new KestrelHeartbeat();
        IConnectionHeartbeatFeature? seen = null;
        var connection = await OpenAsync(heartbeat, kestrel, http2: false, registered => seen = registered);

        Assert.Same(kestrel, seen);
        connection.End();
        await connection.Running;
    }

    [Fact]
    public async Task TlsEndpoint_TakesEveryConnection_BeforeItsProtocolIsKnown()
    {
        var (_, _, heartbeat) = Create();
        var kestrel = new KestrelHeartbeat();
        IConnectionHeartbeatFeature? seen = null;
        var connection = await OpenAsync(heartbeat, kestrel, http2: false, registered => seen = registered, everyConnection: true);

        Assert.NotNull(seen);
        Assert.NotSame(kestrel, seen);
        connection.End();
        await connection.Running;
    }

    private static (FakeTimeProvider Clock, Microsoft.Extensions.Hosting.Internal.ApplicationLifetime Lifetime, ShutdownHeartbeat Heartbeat) Create()
    {
        var clock = new FakeTimeProvider();
        var lifetime = new Microsoft.Extensions.Hosting.Internal.ApplicationLifetime(Microsoft.Extensions.Logging.Abstractions.NullLogger<Microsoft.Extensions.Hosting.Internal.ApplicationLifetime>.Instance);
        return (clock, lifetime, new ShutdownHeartbeat(lifetime, clock));
    }

    private static async Task<OpenConnection> OpenAsync(ShutdownHeartbeat heartbeat, KestrelHeartbeat kestrel, bool http2, Action<IConnectionHeartbeatFeature> register, bool everyConnection = false)
    {
        var connection = new DefaultConnectionContext();
        connection.Features.Set<IConnectionHeartbeatFeature>(kestrel);
        if (http2)
        {
            connection.Features.Set<ITlsApplicationProtocolFeature>(new Alpn());
        }

        var end = new TaskCompletionSource();
        var registered = new TaskCompletionSource();
        var running = heartbeat.Middleware(everyConnection)(async context =>
        {
            register(context.Features.Get<IConnectionHeartbeatFeature>()!);
            registered.SetResult();
            await end.Task;
        })(connection);
        await registered.Task.WaitAsync(TimeSpan.FromSeconds(5));
        return new OpenConnection(running, end);
    }

    private sealed record OpenConnection(Task Running, TaskCompletionSource Ended)
    {
        public void End() => Ended.SetResult();
    }

    /// <summary>Kestrel's per-connection heartbeat, ticked by hand.</summary>
    private sealed class KestrelHeartbeat : IConnectionHeartbeatFeature
    {
        private readonly List<(Action<object>, object)> _handlers = [];

        public void OnHeartbeat(Action<object> action, object state) => _handlers.Add((action, state));

        public void Tick()
        {
            foreach (var (action, state) in _handlers)
            {
                action(state);
            }
        }
    }

    private sealed class Alpn : ITlsApplicationProtocolFeature
    {
        public ReadOnlyMemory<byte> ApplicationProtocol => System.Net.Security.SslApplicationProtocol.Http2.Protocol;
    }
}
