using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Security;

/// <summary>Route rate limits: exact counts, 429 with Retry-After, independent and bounded partitions, trusted client addresses.</summary>
public class RateLimitingTests
{
    private static async Task<GatewayUnderTest> StartAsync(TestBackend backend, string policy, string? forwarded = null)
    {
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]!["RateLimiterPolicy"] = "limited";
        config["Gateway"] = JsonNode.Parse($$"""{ "RateLimiting": { "Policies": { "limited": {{policy}} } } {{(forwarded is null ? "" : ", \"ForwardedHeaders\": " + forwarded)}} }""");
        return await GatewayUnderTest.StartAsync(config);
    }

    /// <summary>A client whose connections come from <paramref name="local"/> (any 127.x address is loopback).</summary>
    private static HttpClient ClientFrom(GatewayUnderTest gateway, string local) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (context, cancellationToken) =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            socket.Bind(new IPEndPoint(IPAddress.Parse(local), 0));
            await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        },
    })
    { BaseAddress = gateway.ProxyAddress, Timeout = TimeSpan.FromSeconds(30) };

    private static async Task<(int Ok, int Limited, string? RetryAfter)> SendAsync(HttpClient client, int count, Action<HttpRequestMessage>? decorate = null)
    {
        int ok = 0, limited = 0;
        string? retryAfter = null;
        for (var i = 0; i < count; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/x");
            decorate?.Invoke(request);
            using var response = await client.SendAsync(request);
            if (response.StatusCode == HttpStatusCode.OK)
            {
                ok++;
            }
            else
            {
                Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
                limited++;
                retryAfter = response.Headers.RetryAfter?.Delta?.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return (ok, limited, retryAfter);
    }

    [Theory]
    [InlineData("""{ "Kind": "TokenBucket", "PermitLimit": 5, "TokensPerPeriod": 1, "ReplenishmentPeriod": "01:00:00" }""", 5, "3600")]
    [InlineData("""{ "Kind": "FixedWindow", "PermitLimit": 3, "Window": "01:00:00" }""", 3, "3600")]
    [InlineData("""{ "Kind": "SlidingWindow", "PermitLimit": 4, "Window": "01:00:00", "SegmentsPerWindow": 2 }""", 4, "1")]
    public async Task ALimit_GivesExactlyItsPermits_Then429WithRetryAfter(string policy, int permits, string retryAfter)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, policy);
        using var client = gateway.CreateProxyClient();

        var (ok, limited, seen) = await SendAsync(client, permits + 4);

        Assert.Equal(permits, ok);
        Assert.Equal(4, limited);
        Assert.Equal(retryAfter, seen);
        Assert.Equal(permits, backend.Requests);
        Assert.Contains(gateway.Logs.Lines, line => line.Contains("policy 'limited'", StringComparison.Ordinal) && line.Contains("429", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AConcurrencyPolicy_CountsAWebSocketForAsLongAsItIsOpen_SoItLimitsAClientsOpenSockets()
    {
        // A handshake's request lasts as long as its WebSocket: its Concurrency permit is given back at the close, not
        // after the 101 (as the docs say; a rate kind counts the handshake once).
        await using var backend = await YarpGateway.Tests.WebSockets.EchoWebSocketBackend.StartAsync();
        var config = backend.Config(("all", new JsonObject { ["RateLimiterPolicy"] = "sockets" }));
        config["Gateway"] = JsonNode.Parse("""{ "RateLimiting": { "Policies": { "sockets": { "Kind": "Concurrency", "PermitLimit": 2 } } } }""");
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var uri = new UriBuilder(gateway.ProxyAddress) { Scheme = "ws", Path = "/chat" }.Uri;
        async Task<System.Net.WebSockets.ClientWebSocket> OpenAsync()
        {
            var socket = new System.Net.WebSockets.ClientWebSocket();
            await socket.ConnectAsync(uri, new HttpMessageInvoker(new SocketsHttpHandler()), bound.Token);
            return socket;
        }

        using var first = await OpenAsync();
        using var second = await OpenAsync();
        Assert.Equal(HttpStatusCode.TooManyRequests, await YarpGateway.Tests.WebSockets.WebSocketHandshake.StatusAsync(gateway, "1.1", "/chat", bound.Token));

        await first.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "bye", bound.Token);
        // The permit comes back once the gateway has seen the close through: the next handshake is let in then.
        Assert.True(await Eventually.TrueAsync(
            async () => await YarpGateway.Tests.WebSockets.WebSocketHandshake.StatusAsync(gateway, "1.1", "/chat", bound.Token) == HttpStatusCode.SwitchingProtocols,
            TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task PartitionsByHeader_AreIndependent_AndAMissingHeaderSharesOne()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, """{ "PermitLimit": 2, "TokensPerPeriod": 1, "ReplenishmentPeriod": "01:00:00", "PartitionBy": "Header:X-Api-Key" }""");
        using var client = gateway.CreateProxyClient();

        Assert.Equal(2, (await SendAsync(client, 3, r => r.Headers.Add("X-Api-Key", "one"))).Ok);
        Assert.Equal(2, (await SendAsync(client, 3, r => r.Headers.Add("X-Api-Key", "two"))).Ok);
        Assert.Equal(2, (await SendAsync(client, 3)).Ok);
    }

    [Fact]
    public async Task PartitionsByClientIp_AreIndependent_AndAnUntrustedXForwardedForChangesNothing()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, """{ "PermitLimit": 2, "TokensPerPeriod": 1, "ReplenishmentPeriod": "01:00:00" }""");
        using var first = ClientFrom(gateway, "127.0.0.1");
        using var second = ClientFrom(gateway, "127.0.0.2");

        Assert.Equal(2, (await SendAsync(first, 2)).Ok);
        var spoofed = await SendAsync(first, 3, r => r.Headers.Add("X-Forwarded-For", $"203.0.113.{Random.Shared.Next(1, 250)}"));
        Assert.Equal((0, 3), (spoofed.Ok, spoofed.Limited));
        Assert.Equal(2, (await SendAsync(second, 3)).Ok);
    }

    [Fact]
    public async Task FromATrustedProxy_TheForwardedAddressIsTheClient()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, """{ "PermitLimit": 1, "TokensPerPeriod": 1, "ReplenishmentPeriod": "01:00:00" }""",
            forwarded: """{ "KnownProxies": [ "127.0.0.1" ] }""");
        using var client = gateway.CreateProxyClient();

        Assert.Equal(1, (await SendAsync(client, 2, r => r.Headers.Add("X-Forwarded-For", "198.51.100.7"))).Ok);
        Assert.Equal(1, (await SendAsync(client, 2, r => r.Headers.Add("X-Forwarded-For", "spoofed, 198.51.100.8"))).Ok);
        Assert.Equal("198.51.100.8", backend.RequestHeaders.Last()["X-Forwarded-For"]);
    }

    [Fact]
    public async Task AFloodOfDistinctKeys_IsBoundedByMaxPartitions_TheRestShareOnePartition()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, """{ "PermitLimit": 1, "TokensPerPeriod": 1, "ReplenishmentPeriod": "01:00:00", "PartitionBy": "Header:X-Api-Key", "MaxPartitions": 10 }""");
        using var client = gateway.CreateProxyClient();

        var ok = 0;
        for (var i = 0; i < 200; i++)
        {
            ok += (await SendAsync(client, 1, r => r.Headers.Add("X-Api-Key", new string('k', 100) + i))).Ok;
        }

        // Ten partitions of one permit each, and one overflow partition with one permit.
        Assert.Equal(11, ok);
        var policies = gateway.Services.GetRequiredService<YarpGateway.RateLimiting.RateLimitPolicies>();
        Assert.Equal(11, policies.All["limited"].Partitions);
        Assert.Contains(gateway.Logs.Lines, line => line.Contains("holds MaxPartitions (10)", StringComparison.Ordinal));
    }
}
