using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.WebSockets;

/// <summary>WebSockets through the gateway's relay, clients over HTTP/1.1 and HTTP/2, backends over HTTP/1.1 and HTTP/2.</summary>
public class WebSocketProxyTests
{
    private static JsonObject RouteTo(EchoWebSocketBackend backend, bool http2Backend = false)
    {
        var cluster = new JsonObject { ["Destinations"] = new JsonObject { ["d"] = new JsonObject { ["Address"] = backend.Address.ToString() } } };
        if (http2Backend)
        {
            cluster["HttpRequest"] = new JsonObject { ["Version"] = "2", ["VersionPolicy"] = "RequestVersionExact" };
        }

        var config = new JsonObject
        {
            ["ReverseProxy"] = new JsonObject
            {
                ["Routes"] = new JsonObject { ["ws"] = new JsonObject { ["ClusterId"] = "ws", ["Match"] = new JsonObject { ["Path"] = "/{**rest}" } } },
                ["Clusters"] = new JsonObject { ["ws"] = cluster },
            },
        };
        return config;
    }

    private static async Task<ClientWebSocket> ConnectAsync(GatewayUnderTest gateway, Version version, Action<ClientWebSocketOptions>? options = null, string path = "/echo")
    {
        var socket = new ClientWebSocket();
        socket.Options.HttpVersion = version;
        socket.Options.HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        options?.Invoke(socket.Options);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var uri = new UriBuilder(gateway.ProxyAddress) { Scheme = "ws", Path = path }.Uri;
        await socket.ConnectAsync(uri, new HttpMessageInvoker(new SocketsHttpHandler()), timeout.Token);
        return socket;
    }

    private static async Task<(WebSocketMessageType Type, byte[] Data)> ReceiveMessageAsync(ClientWebSocket socket)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var message = new MemoryStream();
        var buffer = new byte[16 * 1024];
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, timeout.Token);
            message.Write(buffer, 0, result.Count);
            if (result.EndOfMessage)
            {
                return (result.MessageType, message.ToArray());
            }
        }
    }

    /// <summary>
    /// The cluster with <paramref name="failing"/> as its first destination, balanced round robin so that handshakes draw it in
    /// turn (with the default power of two choices, four handshakes all drew the live one in one CI run).
    /// </summary>
    private static JsonObject WithFailingDestinationFirst(JsonObject config, Uri failing)
    {
        var cluster = config["ReverseProxy"]!["Clusters"]!["ws"]!.AsObject();
        cluster["Destinations"]!.AsObject().Insert(0, "failing", new JsonObject { ["Address"] = failing.ToString() });
        cluster["LoadBalancingPolicy"] = "RoundRobin";
        return config;
    }

    /// <summary>Four WebSockets through the gateway, one after another, each echoing one message and closing.</summary>
    private static async Task EchoFourTimesAsync(GatewayUnderTest gateway, string version)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        for (var i = 0; i < 4; i++)
        {
            using var socket = await ConnectAsync(gateway, Version.Parse(version));
            var text = "hello " + i;
            await socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, endOfMessage: true, timeout.Token);
            Assert.Equal(text, Encoding.UTF8.GetString((await ReceiveMessageAsync(socket)).Data));
            await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", timeout.Token);
        }
    }

    public static TheoryData<string, bool> Versions => new() { { "1.1", false }, { "2.0", false }, { "1.1", true }, { "2.0", true } };

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task Echo_TextBinaryFragmentedAndLarge_ThenCleanClose(string version, bool http2Backend)
    {
        await using var backend = await EchoWebSocketBackend.StartAsync(http2Backend);
        await using var gateway = await GatewayUnderTest.StartAsync(RouteTo(backend, http2Backend));
        using var socket = await ConnectAsync(gateway, Version.Parse(version));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));

        await socket.SendAsync(Encoding.UTF8.GetBytes("hello"), WebSocketMessageType.Text, endOfMessage: true, timeout.Token);
        var text = await ReceiveMessageAsync(socket);
        Assert.Equal(WebSocketMessageType.Text, text.Type);
        Assert.Equal("hello", Encoding.UTF8.GetString(text.Data));

        var binary = new byte[] { 0, 1, 2, 255 };
        await socket.SendAsync(binary, WebSocketMessageType.Binary, endOfMessage: true, timeout.Token);
        Assert.Equal(binary, (await ReceiveMessageAsync(socket)).Data);

        // One message in three fragments comes back whole.
        await socket.SendAsync("frag"u8.ToArray(), WebSocketMessageType.Text, endOfMessage: false, timeout.Token);
        await socket.SendAsync("men"u8.ToArray(), WebSocketMessageType.Text, endOfMessage: false, timeout.Token);
        await socket.SendAsync("ted"u8.ToArray(), WebSocketMessageType.Text, endOfMessage: true, timeout.Token);
        Assert.Equal("fragmented", Encoding.UTF8.GetString((await ReceiveMessageAsync(socket)).Data));

        var large = new byte[1024 * 1024];
        Random.Shared.NextBytes(large);
        await socket.SendAsync(large, WebSocketMessageType.Binary, endOfMessage: true, timeout.Token);
        Assert.Equal(large, (await ReceiveMessageAsync(socket)).Data);

        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", timeout.Token);
        Assert.Equal(WebSocketState.Closed, socket.State);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
        Assert.Equal(http2Backend ? 1 : 0, backend.AcceptedOverHttp2);

        // A WebSocket's lifetime is not a request's duration: nothing recorded there (it used to be a 1xx).
        var traffic = gateway.Services.GetRequiredService<YarpGateway.Endpoints.TrafficCounters>();
        Assert.True(await Eventually.TrueAsync(() => traffic.UpgradedConnections == 0, TimeSpan.FromSeconds(5)));
        Assert.Equal(0, gateway.CounterSum("gateway.proxy.request.duration"));
    }

    /// <summary>
    /// A route <c>Timeout</c> bounds a request's whole response, but not a WebSocket's life: YARP lifts it once the
    /// upgrade succeeds, so a socket on such a route keeps relaying long past it (a chat behind a route with a 30 s timeout
    /// must not drop every 30 s).
    /// </summary>
    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task ARouteTimeout_DoesNotCutAnOpenWebSocket(string version)
    {
        await using var backend = await EchoWebSocketBackend.StartAsync();
        var config = RouteTo(backend);
        config["ReverseProxy"]!["Routes"]!.AsObject()["timed"] = new JsonObject
        {
            ["ClusterId"] = "ws",
            ["Match"] = new JsonObject { ["Path"] = "/timed/{**rest}" },
            ["Timeout"] = "00:00:01",
        };
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using (var warm = await ConnectAsync(gateway, Version.Parse(version)))
        {
            // A cold first handshake can take most of a second, and the timeout covers the handshake: warm it up
            // on the route without one, so that the timed handshake below is answered well inside its second.
            await warm.CloseAsync(WebSocketCloseStatus.NormalClosure, "warm", timeout.Token);
        }

        using var socket = await ConnectAsync(gateway, Version.Parse(version), path: "/timed/echo");

        // Echoes for two and a half times the route's timeout, counted from the handshake's arrival.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var echoes = 0;
        while (clock.Elapsed < TimeSpan.FromSeconds(2.5))
        {
            var text = "tick " + echoes;
            await socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, endOfMessage: true, timeout.Token);
            Assert.Equal(text, Encoding.UTF8.GetString((await ReceiveMessageAsync(socket)).Data));
            echoes++;
            await Task.Delay(TimeSpan.FromMilliseconds(100), timeout.Token);
        }

        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", timeout.Token);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
        Assert.Equal(0, gateway.CounterSum("gateway.proxy.timeouts|cluster=ws|"));
    }

    /// <summary>
    /// A backend's rolling update, as a WebSocket client sees it: a destination that refuses connections saw nothing of the
    /// handshake, so the handshake goes to another destination, as any other request does, instead of a 502 for every
    /// client that drew the dead one until outlier ejection takes it out.
    /// </summary>
    [Theory]
    [MemberData(nameof(Versions))]
    public async Task Handshake_ToADestinationThatRefusesConnections_GoesToAnother(string version, bool http2Backend)
    {
        await using var backend = await EchoWebSocketBackend.StartAsync(http2Backend);
        var config = WithFailingDestinationFirst(RouteTo(backend, http2Backend), new Uri($"http://127.0.0.1:{LoopbackPort.Unused()}/"));
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        await EchoFourTimesAsync(gateway, version);

        Assert.True(gateway.Counter("gateway.proxy.retries|cluster=ws|reason=connect_failure") >= 1, gateway.DescribeCounters("gateway.proxy"));
    }

    /// <summary>
    /// A destination that takes the connection and resets it before answering the handshake (it crashed, or was killed in a
    /// rolling update with the handshake in its accept queue): a handshake is a GET with no body, and nothing has reached the
    /// client, so it goes to another destination, as a GET does (nginx's default <c>proxy_next_upstream error</c> does the
    /// same). It was answered 502 before.
    /// </summary>
    [Theory]
    [MemberData(nameof(Versions))]
    public async Task Handshake_ToADestinationThatResetsBeforeAnswering_GoesToAnother(string version, bool http2Backend)
    {
        await using var backend = await EchoWebSocketBackend.StartAsync(http2Backend);
        await using var resetting = ResettingBackend.Start();
        var config = WithFailingDestinationFirst(RouteTo(backend, http2Backend), resetting.Address);
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        await EchoFourTimesAsync(gateway, version);

        Assert.True(resetting.Heads >= 1, $"the resetting destination read {resetting.Heads} request heads");
        Assert.True(gateway.CounterSum("gateway.proxy.retries") >= 1, gateway.DescribeCounters("gateway.proxy"));
    }

    /// <summary>A destination that answers a handshake 503 (overloaded, or draining): retried as a GET's 503 is, the client gets the other's 101.</summary>
    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task Handshake_AnsweredARetryableStatus_GoesToAnother(string version)
    {
        await using var backend = await EchoWebSocketBackend.StartAsync();
        await using var unavailable = ResettingBackend.Start("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy");
        var config = WithFailingDestinationFirst(RouteTo(backend), unavailable.Address);
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        await EchoFourTimesAsync(gateway, version);

        Assert.True(unavailable.Heads >= 1, $"the unavailable destination read {unavailable.Heads} request heads");
        Assert.True(gateway.Counter("gateway.proxy.retries|cluster=ws|reason=status_503") >= 1, gateway.DescribeCounters("gateway.proxy"));
    }

    /// <summary>
    /// A handshake takes a slot of each limit it passes and gives it back when it is answered: open WebSockets hold none, so
    /// more of them than the global limit and the route's and cluster's limits are open at once,
    /// each admitted in turn.
    /// </summary>
    /// <remarks>
    /// Each limit has a short queue: a client can see its handshake answered a moment before the gateway's frame gives the
    /// slot back (as for any request), and the next handshake may arrive in that moment (a CI run got a 503 with no queue).
    /// A slot held for a WebSocket's life still fails this: the third handshake would wait the 2 s out and get 503.
    /// </remarks>
    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task OpenWebSockets_HoldNoSlot_SoMoreThanEveryLimitAreOpenAtOnce(string version)
    {
        await using var backend = await EchoWebSocketBackend.StartAsync();
        var config = RouteTo(backend);
        var limit = () => new JsonObject { ["MaxConcurrency"] = "1", ["MaxQueue"] = "4", ["QueueTimeout"] = "00:00:02" };
        config["ReverseProxy"]!["Routes"]!["ws"]!["Metadata"] = limit();
        config["ReverseProxy"]!["Clusters"]!["ws"]!["Metadata"] = limit();
        await using var gateway = await GatewayUnderTest.StartAsync(config,
            "--Gateway:Admission:Global:MaxConcurrency=2", "--Gateway:Admission:Global:MaxQueue=4",
            "--Gateway:Admission:Global:QueueTimeout=00:00:02");

        var sockets = new List<ClientWebSocket>();
        try
        {
            for (var i = 0; i < 4; i++)
            {
                sockets.Add(await ConnectAsync(gateway, Version.Parse(version)));
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            foreach (var socket in sockets)
            {
                await socket.SendAsync(Encoding.UTF8.GetBytes("hi"), WebSocketMessageType.Text, endOfMessage: true, timeout.Token);
                Assert.Equal("hi", Encoding.UTF8.GetString((await ReceiveMessageAsync(socket)).Data));
            }

            Assert.Equal(4, gateway.Counter("gateway.admission.admitted|limit=global|name=global"));
            Assert.Equal(4, gateway.Counter("gateway.admission.admitted|limit=route|name=ws"));
            Assert.Equal(4, gateway.Counter("gateway.admission.admitted|limit=cluster|name=ws"));
            Assert.Equal(0, gateway.CounterSum("gateway.admission.rejected"));
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Abort();
                socket.Dispose();
            }
        }
    }

    [Fact]
    public async Task NonWebSocketRequestToAWebSocketBackend_GetsTheBackendsAnswer_AndNothingStaysOpen()
    {
        await using var backend = await EchoWebSocketBackend.StartAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(RouteTo(backend));
        using var client = gateway.CreateProxyClient();

        using var response = await client.GetAsync("/echo");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var traffic = gateway.Services.GetRequiredService<YarpGateway.Endpoints.TrafficCounters>();
        Assert.True(await Eventually.TrueAsync(() => traffic.UpgradedConnections == 0 && traffic.InFlightRequests == 0, TimeSpan.FromSeconds(5)));
    }

    /// <summary>
    /// Once a WebSocket is relayed, the client's request headers are let go: Kestrel would keep them (a browser's cookies
    /// and user agent) for the connection's life, in every idle WebSocket; so are routing's values (106 bytes each). Watched
    /// through Kestrel itself: weak references to the string Kestrel made of the Cookie header and to the values routing set.
    /// </summary>
    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task ARelayedWebSocket_DoesNotKeepTheClientsRequestHeadersOrRouteValues(string version)
    {
        await using var backend = await EchoWebSocketBackend.StartAsync();
        var watch = new CookieWatch();
        await using var gateway = await GatewayUnderTest.StartAsync(RouteTo(backend), services => services.AddSingleton<IStartupFilter>(watch));
        using var socket = await ConnectAsync(gateway, Version.Parse(version), options => options.SetRequestHeader("Cookie", "session=" + new string('x', 1000)));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));

        // An echo: the backend stream is open, so the relay is under way (the release comes with it).
        await socket.SendAsync("hello"u8.ToArray(), WebSocketMessageType.Text, endOfMessage: true, timeout.Token);
        Assert.Equal("hello", Encoding.UTF8.GetString((await ReceiveMessageAsync(socket)).Data));

        Assert.NotNull(watch.Cookie);
        Assert.True(await Eventually.TrueAsync(() => { GC.Collect(); GC.WaitForPendingFinalizers(); return !watch.Cookie.IsAlive; }, TimeSpan.FromSeconds(5)), "the client's Cookie header is still held");
        Assert.NotNull(watch.RouteValues); // routing's ("rest": "echo"), of no use once routed
        Assert.True(await Eventually.TrueAsync(() => { GC.Collect(); GC.WaitForPendingFinalizers(); return !watch.RouteValues.IsAlive; }, TimeSpan.FromSeconds(5)), "the route values are still held");
        Assert.Equal(WebSocketState.Open, socket.State);

        await socket.SendAsync("again"u8.ToArray(), WebSocketMessageType.Text, endOfMessage: true, timeout.Token);
        Assert.Equal("again", Encoding.UTF8.GetString((await ReceiveMessageAsync(socket)).Data));
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", timeout.Token);
    }

    /// <summary>
    /// Runs first in the gateway's pipeline and keeps weak references to the Cookie header's string and to the route values
    /// routing sets (through the server's own route values feature, wrapped).
    /// </summary>
    private sealed class CookieWatch : IStartupFilter
    {
        public WeakReference? Cookie { get; private set; }

        public WeakReference? RouteValues { get; private set; }

        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use(inner => context =>
            {
                if (context.Request.Headers.Cookie is [{ } cookie])
                {
                    Cookie = new WeakReference(cookie);
                }

                var server = context.Features.Get<Microsoft.AspNetCore.Http.Features.IRouteValuesFeature>()!;
                context.Features.Set<Microsoft.AspNetCore.Http.Features.IRouteValuesFeature>(new RouteValuesWatch(server, this));
                return inner(context);
            });
            next(app);
        };

        private sealed class RouteValuesWatch(Microsoft.AspNetCore.Http.Features.IRouteValuesFeature server, CookieWatch watch) : Microsoft.AspNetCore.Http.Features.IRouteValuesFeature
        {
            public Microsoft.AspNetCore.Routing.RouteValueDictionary RouteValues
            {
                get => server.RouteValues;
                set
                {
                    if (value is { Count: > 0 })
                    {
                        watch.RouteValues = new WeakReference(value);
                    }

                    server.RouteValues = value;
                }
            }
        }
    }
}
