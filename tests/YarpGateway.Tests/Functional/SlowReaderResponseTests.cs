using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using YarpGateway.ResponseBuffering;
using YarpGateway.Tests.Hostile;

namespace YarpGateway.Tests.Functional;

/// <summary>
/// Large response bodies go through the slow-client gate: bytes intact over HTTP/1.1 and HTTP/2, a stalled reader is
/// waited for in the gate (where YARP's copy buffer is not held), and a client that goes away is the client's error.
/// </summary>
public class SlowReaderResponseTests
{
    private const int Large = 3 * 1024 * 1024;

    [Fact]
    public async Task LargeBodies_ArriveWhole_OverHttp11AndHttp2()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)));
        using var http1 = gateway.CreateProxyClient();
        using var http2 = gateway.CreateHttp2ProxyClient();
        var expected = TestBackend.Alphabet(Large);

        foreach (var client in new[] { http1, http2 })
        {
            var tasks = Enumerable.Range(0, 4).Select(_ => client.GetByteArrayAsync($"/bytes/{Large}")).ToArray();
            foreach (var body in await Task.WhenAll(tasks))
            {
                Assert.True(expected.AsSpan().SequenceEqual(body), "a body came through changed");
            }
        }

        Assert.Equal(0, gateway.Services.GetRequiredService<ResponseBufferingCounters>().WaitingNow);
    }

    [Fact]
    public async Task Http2StreamsWhoseClientGrantsNoMoreWindow_WaitInTheGate_AndLeaveItWhenReset()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)));
        var counters = gateway.Services.GetRequiredService<ResponseBufferingCounters>();

        // Three streams of 3 MiB each on one connection that never sends WINDOW_UPDATE: 64 KiB each reach the
        // client, and the rest of each copy waits for it.
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        await socket.SendAsync((byte[])[.. Http2Frames.Preface, .. Http2Frames.EmptySettings(),
            .. Http2Frames.Request(1, path: $"/bytes/{Large}"), .. Http2Frames.Request(3, path: $"/bytes/{Large}"), .. Http2Frames.Request(5, path: $"/bytes/{Large}")], SocketFlags.None);
        Assert.True(await Eventually.TrueAsync(() => counters.WaitingNow == 3, TimeSpan.FromSeconds(10)), $"{counters.WaitingNow} waiting");

        await socket.SendAsync((byte[])[.. Http2Frames.Reset(1), .. Http2Frames.Reset(3), .. Http2Frames.Reset(5)], SocketFlags.None);
        Assert.True(await Eventually.TrueAsync(() => counters.WaitingNow == 0, TimeSpan.FromSeconds(10)), $"{counters.WaitingNow} still waiting");
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("[ProxyError]", StringComparison.Ordinal)); // the client's doing, not the destination's
    }

    [Fact]
    public async Task AnHttp11ClientThatLeavesMidBody_IsTheClientsError_NotTheDestinations()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)));

        using (var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress))
        {
            // An endless body: Kestrel drops writes to a reset connection without a word and tells the request so on
            // the thread pool, so a finite body could be copied to its end, as a success, before it hears.
            await socket.SendAsync("GET /endless HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray(), SocketFlags.None);
            await RawSocket.ReceiveAtLeastAsync(socket, 256 * 1024);
            socket.LingerState = new LingerOption(true, 0); // a reset, as a client that crashed
        }

        // Read from this gateway's own meter, not a scrape: in this test process every gateway's meter provider
        // also counts the other gateways' instruments of the same name.
        Assert.True(await Eventually.TrueAsync(() => ClientSideErrors(gateway) == 1, TimeSpan.FromSeconds(10)), gateway.DescribeCounters("gateway.proxy.errors"));
        Assert.Equal(0, gateway.Counter("gateway.proxy.errors|cluster=c1|error=response_body_destination"));
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("[ProxyError]", StringComparison.Ordinal));
        Assert.Equal(0, gateway.Services.GetRequiredService<ResponseBufferingCounters>().WaitingNow);
    }

    /// <summary>The gateway's client-side response errors (the client went away or its side of the copy failed).</summary>
    private static long ClientSideErrors(GatewayUnderTest gateway)
        => gateway.Counter("gateway.proxy.errors|cluster=c1|error=response_body_client") + gateway.Counter("gateway.proxy.errors|cluster=c1|error=response_body_canceled");
}
