using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.WebSockets;

/// <summary>SIGTERM against the real process with WebSockets open: each client gets 1001, spread over the window, and the process exits 0.</summary>
[Collection(TimingSensitive.Name)]
public class WebSocketDrainTests
{
    [Fact]
    public async Task RelaysDisposedWhileTheSpreadIsRunning_TheSpreadEndsQuietly()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)), "--Gateway:WebSockets:CloseWindow=00:00:30");
        var relays = Microsoft.Extensions.DependencyInjection.ActivatorUtilities.CreateInstance<YarpGateway.WebSockets.WebSocketRelays>(gateway.Services, TimeProvider.System);
        var settings = YarpGateway.WebSockets.WebSocketSettings.Resolve(new YarpGateway.WebSockets.WebSocketProxyOptions(), null);

        // The first relay's close (the moment its close timer is armed) disposes the relays, as host
        // shutdown can while a spread is between two closes.
        var disposeOnFirstClose = new DisposingTimeProvider(relays);
        for (var i = 0; i < 3; i++)
        {
            var relay = new YarpGateway.WebSockets.WebSocketRelay(settings, "r", new Microsoft.AspNetCore.Http.DefaultHttpContext(), relays, new YarpGateway.WebSockets.WebSocketCounters(), disposeOnFirstClose);
            relay.Attach(new MemoryStream());
        }

        await relays.DrainAsync(CancellationToken.None);
        var spread = relays.Spreading;
        await ((Task)spread).ContinueWith(static _ => { }, TaskScheduler.Default).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.True(spread.Status == TaskStatus.RanToCompletion, $"the spread ended {spread.Status}: {spread.Exception?.InnerException}");
    }

    private sealed class DisposingTimeProvider(IDisposable disposable) : TimeProvider
    {
        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            disposable.Dispose();
            return System.CreateTimer(callback, state, dueTime, period);
        }
    }

    /// <summary>
    /// SIGTERM with WebSockets open, over HTTP/1.1 (a connection each) or HTTP/2 (RFC 8441, all of them streams of one
    /// connection, which Kestrel's shutdown also sends a GOAWAY): every client gets its 1001 within the window, and the
    /// process exits once they have answered.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Sigterm_EveryClientGets1001_SpreadOverTheWindow_ThenTheProcessExits(bool http2)
    {
        const int Clients = 6;
        var window = TimeSpan.FromSeconds(3);
        await using var backend = await EchoWebSocketBackend.StartAsync();
        var configPath = ProxyConfigJson.WriteTemp("yarpgateway-wsdrain-", """
            { "ReverseProxy": {
                "Routes": { "ws": { "ClusterId": "ws", "Match": { "Path": "/{**rest}" } } },
                "Clusters": { "ws": { "Destinations": { "d": { "Address": "
            """.Trim() + backend.Address + "\" } } } } } }");

        using var gateway = GatewayProcess.StartOnLoopback(configPath,
            "--Gateway:Shutdown:DrainDelay=00:00:00", "--Gateway:Shutdown:Timeout=00:00:10",
            "--Gateway:WebSockets:CloseWindow=00:00:03", "--Gateway:WebSockets:CloseTimeout=00:00:02");
        var (proxy, _) = await gateway.FindEndpointsAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        var sockets = new List<ClientWebSocket>();
        using var invoker = new HttpMessageInvoker(new SocketsHttpHandler()); // one HTTP/2 connection for every stream
        for (var i = 0; i < Clients; i++)
        {
            var socket = new ClientWebSocket();
            socket.Options.KeepAliveInterval = TimeSpan.Zero;
            socket.Options.CollectHttpResponseDetails = true;
            if (http2)
            {
                socket.Options.HttpVersion = HttpVersion.Version20;
                socket.Options.HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact;
            }

            await socket.ConnectAsync(new UriBuilder(proxy) { Scheme = "ws", Path = "/echo" }.Uri, invoker, timeout.Token);
            Assert.Equal(http2 ? HttpStatusCode.OK : HttpStatusCode.SwitchingProtocols, socket.HttpStatusCode); // an extended CONNECT is answered 200
            await socket.SendAsync(Encoding.UTF8.GetBytes("hello"), WebSocketMessageType.Text, true, timeout.Token);
            sockets.Add(socket);
        }

        var clock = Stopwatch.StartNew();

        // Each client reads its echo, then waits for the gateway's close and answers it.
        var closes = sockets.Select(socket => Task.Run(async () =>
        {
            var buffer = new byte[1024];
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer, timeout.Token);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    var at = clock.Elapsed;
                    await socket.CloseOutputAsync(WebSocketCloseStatus.EndpointUnavailable, "bye", timeout.Token);
                    return (At: at, Status: result.CloseStatus, Reason: result.CloseStatusDescription);
                }
            }
        })).ToArray();

        var sigterm = clock.Elapsed;
        await DrainProcessTests.SigtermAsync(gateway.ProcessId);
        var received = await Task.WhenAll(closes).WaitAsync(TimeSpan.FromSeconds(20));
        var exitCode = await gateway.WaitForExitAsync(TimeSpan.FromSeconds(20));
        var exitedAfter = clock.Elapsed - sigterm;

        Assert.All(received, r => Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, r.Status)); // 1001
        Assert.All(received, r => Assert.Equal("gateway restarting", r.Reason));
        var first = received.Min(r => r.At) - sigterm;
        var last = received.Max(r => r.At) - sigterm;
        Assert.True(last < window + TimeSpan.FromSeconds(1), $"the last 1001 came {last} after SIGTERM; the window is {window}");
        Assert.True(last - first > window / 3, $"the closes were not spread: first {first}, last {last}");
        Assert.Equal(0, exitCode);
        Assert.True(exitedAfter < window + TimeSpan.FromSeconds(4), $"exited {exitedAfter} after SIGTERM");
        Assert.Contains($"Closing {Clients} WebSockets with 1001", gateway.StandardOutput, StringComparison.Ordinal);
        foreach (var socket in sockets)
        {
            socket.Dispose();
        }
    }
}
