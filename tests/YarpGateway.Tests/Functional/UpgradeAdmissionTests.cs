using System.Text;

namespace YarpGateway.Tests.Functional;

public class UpgradeAdmissionTests
{
    private static readonly byte[] Upgrade = Encoding.ASCII.GetBytes(
        "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");

    [Fact]
    public async Task OverTheUpgradeRate_503WithJitteredRetryAfter_PlainRequestsUnaffected()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")),
            "--Gateway:Admission:Upgrades:RatePerSecond=1", "--Gateway:Admission:Upgrades:Burst=1",
            "--Gateway:Admission:Upgrades:RetryAfterMin=00:00:02", "--Gateway:Admission:Upgrades:RetryAfterMax=00:00:09");

        var retryAfters = new List<int>();
        var passed = 0;
        for (var i = 0; i < 12; i++)
        {
            using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);
            await socket.SendAsync(Upgrade);
            var response = await RawSocket.ReceiveResponseHeadAsync(socket);
            if (response.StartsWith("HTTP/1.1 503", StringComparison.Ordinal))
            {
                var header = response.Split("\r\n").Single(l => l.StartsWith("Retry-After:", StringComparison.OrdinalIgnoreCase));
                retryAfters.Add(int.Parse(header["Retry-After:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture));
            }
            else
            {
                passed++;
            }
        }

        Assert.InRange(passed, 1, 3); // the burst, plus at most a refill or two while the loop runs
        Assert.All(retryAfters, v => Assert.InRange(v, 2, 9));
        Assert.True(retryAfters.Distinct().Count() >= 2, "Retry-After is not jittered: " + string.Join(",", retryAfters));
        Assert.Equal(retryAfters.Count, gateway.Counter("gateway.admission.rejected|limit=upgrade|name=global|reason=upgrade_rate"));

        using var client = gateway.CreateProxyClient();
        using var plain = await client.GetAsync("/");
        Assert.Equal(System.Net.HttpStatusCode.OK, plain.StatusCode);
    }
}
