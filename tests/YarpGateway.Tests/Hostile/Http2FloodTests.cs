using System.Net.Sockets;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Hostile;

/// <summary>HTTP/2 clients that open far more streams than allowed and read nothing, against the real gateway.</summary>
[Collection(TimingSensitive.Name)]
public class Http2FloodTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    // One connection: preface, SETTINGS and 1,000 HEADERS in one write (the advertised limit is 100), then gone without reading.
    internal static async Task FloodOnceAsync(Uri proxy)
    {
        using var socket = await RawSocket.ConnectAsync(proxy);
        var bytes = new List<byte>(Http2Frames.Preface.ToArray());
        bytes.AddRange(Http2Frames.EmptySettings());
        for (var i = 0; i < 1000; i++)
        {
            bytes.AddRange(Http2Frames.Request(1 + (2 * i)));
        }

        try
        {
            await socket.SendAsync(bytes.ToArray(), SocketFlags.None);
        }
        catch (SocketException)
        {
            // The gateway may close first: that is an answer too.
        }
    }

    [Fact]
    public async Task TwoHundredFloodingConnections_LeaveNoConnectionOpen_NothingRetained_AndNewClientsAreServed()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var recorder = new ConnectionRecorder();
        await using var gateway = await GatewayUnderTest.StartAsync(
            ProxyConfigJson.CatchAll("RoundRobin", (backend, null)),
            services => services.AddSingleton<YarpGateway.Endpoints.IProxyConnectionMiddleware>(recorder),
            "--Gateway:Admission:MaxConcurrentConnections=100");
        var traffic = gateway.Services.GetRequiredService<YarpGateway.Endpoints.TrafficCounters>();

        for (var i = 0; i < 200; i++)
        {
            await FloodOnceAsync(gateway.ProxyAddress);
        }

        // Counted open no more (Kestrel's connection slots are free again: 100 of 200 would lock out everyone).
        Assert.True(await Eventually.TrueAsync(() => traffic.OpenConnections == 0, Bound), $"{traffic.OpenConnections} flood connections still counted open");
        using var client = gateway.CreateProxyClient();
        using var response = await client.GetAsync("/after");
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);

        // Kestrel's one critical line per queued write (thousands a second) comes once a second, with a count.
        var lines = gateway.Logs.Lines.ToList();
        Assert.True(lines.Count < 50, $"{lines.Count} log lines for the flood: " + string.Join(" | ", lines.GroupBy(l => l.Split(' ')[0] + " " + l.Split(' ')[1]).Select(g => $"{g.Count()}x {g.First()}").Take(8)));
        Assert.Contains(lines, l => l.StartsWith("Critical YarpGateway.Telemetry.KestrelLogThrottle", StringComparison.Ordinal) && l.Contains("Http2QueueOperationsExceeded", StringComparison.Ordinal) && l.Contains("more like it in the last second", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Split(' ')[1].StartsWith("Microsoft.AspNetCore.Server.Kestrel.Http2[", StringComparison.Ordinal)); // not logged under its own category

        // Nothing keeps the flood connections alive: after a full collection none is reachable.
        Assert.True(recorder.Count >= 100, $"only {recorder.Count} connections reached the gateway");
        Assert.True(await Eventually.TrueAsync(() =>
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            return recorder.Alive <= 1; // the client above may still hold its own connection
        }, Bound), $"{recorder.Alive} of {recorder.Count} flood connections are still reachable after a full GC");

        // And shutdown waits for none of them (it used to wait out its 30 s timeout).
        await gateway.StopAsync().WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>Remembers every proxy connection weakly, to see whether anything keeps them alive.</summary>
    private sealed class ConnectionRecorder : YarpGateway.Endpoints.IProxyConnectionMiddleware
    {
        private readonly System.Collections.Concurrent.ConcurrentBag<WeakReference<Microsoft.AspNetCore.Connections.ConnectionContext>> _seen = [];

        public int Count => _seen.Count;

        public int Alive => _seen.Count(w => w.TryGetTarget(out _));

        public Microsoft.AspNetCore.Connections.ConnectionDelegate Wrap(Microsoft.AspNetCore.Connections.ConnectionDelegate next, Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerLimits limits) => connection =>
        {
            _seen.Add(new WeakReference<Microsoft.AspNetCore.Connections.ConnectionContext>(connection));
            return next(connection);
        };
    }
}
