using System.Net;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using YarpGateway.Endpoints;

namespace YarpGateway.Tests.Functional;

/// <summary>
/// Backend connections are held within their share of the open-file limit. Tried before: with a limit of 2,048, HTTP/2
/// clients opening WebSockets (each stream its own HTTP/1.1 backend connection) took the process past it, and the
/// runtime ended it ("Out of memory."), dropping every connection. Now a request that would need one more gets 503.
/// </summary>
public class BackendConnectionLimitTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData(20_000L, null, 9_500)]      // the default: half of what the process's own share leaves
    [InlineData(20_000L, 1_000, 18_000)]    // fewer proxy connections allowed: the rest is the backends'
    [InlineData(20_000L, 19_000, 9_500)]    // MaxOpen above the files (warned about at start) does not starve them
    [InlineData(2_048L, 768, 768)]
    [InlineData(null, 100, null)]           // no open-file limit known: none
    public void TheLimit_IsWhatTheOpenFileLimitLeavesAfterTheProxyConnections(long? files, int? proxyConnections, int? expected)
        => Assert.Equal(expected, BackendConnectionLimit.ForBackends(files, proxyConnections ?? OpenConnectionLimit.FromOpenFileLimit(files)));

    [Fact]
    public async Task SocketsAreCounted_OnceEach_WithOrWithoutALimit()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var limit = new BackendConnectionLimit(limit: (int?)null, TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger<BackendConnectionLimit>.Instance);

        var socket = await limit.ConnectAsync(listener.LocalEndpoint, CancellationToken.None).AsTask().WaitAsync(Bound);
        Assert.Equal(1, limit.Open);
        socket.Dispose();
        socket.Dispose();
        Assert.Equal(0, limit.Open);

        // A connect that fails gives its place back too.
        await Assert.ThrowsAnyAsync<System.Net.Sockets.SocketException>(() => limit.ConnectAsync(new IPEndPoint(IPAddress.Loopback, LoopbackPort.Unused()), CancellationToken.None).AsTask().WaitAsync(Bound));
        Assert.Equal(0, limit.Open);
    }

    [Fact]
    public async Task PastTheLimit_ARequestGets503AtOnce_NotRetried_AndTheDestinationIsNotEjected()
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(
            ProxyConfigJson.CatchAll("RoundRobin", (backend, null)),
            services => services.AddSingleton(sp => new BackendConnectionLimit(2, TimeProvider.System, sp.GetRequiredService<ILogger<BackendConnectionLimit>>())));
        var limit = gateway.Services.GetRequiredService<BackendConnectionLimit>();
        using var client = gateway.CreateHttp2ProxyClient(); // one client connection: its streams each need a backend connection

        var held = new[] { client.GetAsync("/hold"), client.GetAsync("/hold") };
        Assert.True(await Eventually.TrueAsync(() => backend.Held == 2, Bound), $"held={backend.Held}");

        using (var refused = await client.GetAsync("/x").WaitAsync(Bound))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
        }

        Assert.Equal(2, backend.Requests);
        Assert.Equal(2, limit.Open);
        Assert.Equal(1, limit.Refused);
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("[BackendConnectionLimitReached] Backend connections reached the limit of 2", StringComparison.Ordinal));
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("[ProxyError]", StringComparison.Ordinal) || l.Contains("[DestinationEjected]", StringComparison.Ordinal));

        backend.Gate.SetResult();
        Assert.All(await Task.WhenAll(held).WaitAsync(Bound), r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));

        // The two connections stay pooled and open: a WebSocket, which needs one of its own (the upgrade connector's),
        // is refused the same way; a plain request takes a pooled one.
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        await socket.SendAsync(Encoding.ASCII.GetBytes("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"));
        Assert.StartsWith("HTTP/1.1 503", await RawSocket.ReceiveResponseHeadAsync(socket), StringComparison.Ordinal);
        Assert.Equal(2, limit.Refused);

        Assert.Equal("b", await client.GetStringAsync("/x").WaitAsync(Bound));
        Assert.Equal(2, limit.Open);
    }
}
