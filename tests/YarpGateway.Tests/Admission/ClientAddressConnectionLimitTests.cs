using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Admission;

/// <summary>
/// <c>Gateway:Admission:Connections:MaxPerClientAddress</c> over real sockets from several loopback addresses: a client past
/// its limit has its new connection closed unanswered while others are served, gets one again once one of its own
/// closes, and a reload to 0 lifts the limit.
/// </summary>
public class ClientAddressConnectionLimitTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private static JsonObject Config(TestBackend backend, int limit, bool proxyProtocol = false)
    {
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["Gateway"] = JsonNode.Parse($$"""{ "Admission": { "Connections": { "MaxPerClientAddress": {{limit}} } }, "ProxyProtocol": { "Enabled": {{(proxyProtocol ? "true" : "false")}} } }""");
        return config;
    }

    /// <summary>A keep-alive connection from <paramref name="local"/> that has sent one request (after a PROXY protocol header naming <paramref name="client"/>, when given); its answer's status line, or "" when it was closed unanswered.</summary>
    private static async Task<(Socket Socket, string Status)> ConnectAndAskAsync(GatewayUnderTest gateway, string local, string? client = null)
    {
        var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress, local);
        var header = client is null ? "" : $"PROXY TCP4 {client} 10.0.0.1 40000 443\r\n";
        var head = await RawSocket.ExchangeAsync(socket, Encoding.ASCII.GetBytes(header + "GET /x HTTP/1.1\r\nHost: gw\r\n\r\n"));
        return (socket, head.Length == 0 ? "" : head[..head.IndexOf('\r', StringComparison.Ordinal)]);
    }

    [Fact]
    public async Task PastItsLimit_AClientsNewConnectionIsClosed_OthersAreServed_AndItGetsOneWhenOneOfItsOwnCloses()
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend, 2));
        var first = await ConnectAndAskAsync(gateway, "127.0.0.2");
        var second = await ConnectAndAskAsync(gateway, "127.0.0.2");
        Assert.Equal("HTTP/1.1 200 OK", first.Status);
        Assert.Equal("HTTP/1.1 200 OK", second.Status);

        var third = await ConnectAndAskAsync(gateway, "127.0.0.2");
        var other = await ConnectAndAskAsync(gateway, "127.0.0.3");

        Assert.Equal("", third.Status);
        Assert.Equal("HTTP/1.1 200 OK", other.Status);
        Assert.Equal(1, gateway.Counter("gateway.connection_admission.closed|reason=client_address_limit"));
        Assert.Contains(gateway.Logs.Lines, line => line.Contains("[ClientAddressConnectionLimitReached]", StringComparison.Ordinal) && line.Contains("from 127.0.0.2:", StringComparison.Ordinal));

        first.Socket.Dispose();
        Assert.True(await Eventually.TrueAsync(async () =>
        {
            var (socket, status) = await ConnectAndAskAsync(gateway, "127.0.0.2");
            socket.Dispose();
            return status == "HTTP/1.1 200 OK";
        }, Bound));

        foreach (var socket in new[] { second.Socket, third.Socket, other.Socket })
        {
            socket.Dispose();
        }

        var limit = gateway.Services.GetRequiredService<YarpGateway.Admission.ClientAddressConnectionLimit>();
        Assert.True(await Eventually.TrueAsync(() => limit.Addresses == 0, Bound), $"{limit.Addresses} addresses still counted");
    }

    [Fact]
    public async Task BehindAProxyProtocolLoadBalancer_TheClientInTheHeaderIsCounted_NotTheLoadBalancer()
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend, 1, proxyProtocol: true));

        var a = await ConnectAndAskAsync(gateway, "127.0.0.2", client: "203.0.113.1");
        var b = await ConnectAndAskAsync(gateway, "127.0.0.2", client: "203.0.113.2");
        var again = await ConnectAndAskAsync(gateway, "127.0.0.2", client: "203.0.113.1");

        Assert.Equal(["HTTP/1.1 200 OK", "HTTP/1.1 200 OK", ""], new[] { a.Status, b.Status, again.Status });
        foreach (var socket in new[] { a.Socket, b.Socket, again.Socket })
        {
            socket.Dispose();
        }
    }

    [Fact]
    public async Task AReloadToZero_LiftsTheLimit()
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend, 1));
        var held = await ConnectAndAskAsync(gateway, "127.0.0.2");
        Assert.Equal("HTTP/1.1 200 OK", held.Status);
        var refused = await ConnectAndAskAsync(gateway, "127.0.0.2");
        Assert.Equal("", refused.Status);

        gateway.WriteConfig(Config(backend, 0));

        Assert.True(await Eventually.TrueAsync(async () =>
        {
            var (socket, status) = await ConnectAndAskAsync(gateway, "127.0.0.2");
            socket.Dispose();
            return status == "HTTP/1.1 200 OK";
        }, Bound));
        held.Socket.Dispose();
        refused.Socket.Dispose();
    }
}
