using System.Net.Sockets;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Hostile;

/// <summary>
/// HTTP/2 "rapid reset": a client that opens streams and cancels them at once, as fast as it can; and its variant
/// "MadeYouReset" (CVE-2025-8671), where the client sends no RST_STREAM but a frame the server must answer by resetting
/// the stream itself, which a limit counting only the client's RST_STREAM frames never sees.
/// </summary>
[Collection(TimingSensitive.Name)]
public class Http2RapidResetTests
{
    [Theory]
    [InlineData("client RST_STREAM")]
    [InlineData("WINDOW_UPDATE past 2^31-1 (the server resets: FLOW_CONTROL_ERROR)")]
    [InlineData("DATA past content-length (the server resets: PROTOCOL_ERROR)")]
    public async Task AConnectionThatKeepsOpeningAndResettingStreams_IsClosed(string howEachStreamEnds)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)), "--Gateway:Http2:MaxStreamResets=50");
        var traffic = gateway.Services.GetRequiredService<YarpGateway.Endpoints.TrafficCounters>();
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        var closedByServer = ReadUntilClosedAsync(socket);

        await socket.SendAsync((byte[])[.. Http2Frames.Preface, .. Http2Frames.EmptySettings()], SocketFlags.None);
        var sent = 0;
        try
        {
            for (var stream = 1; stream < 4000 && !closedByServer.IsCompleted; stream += 2)
            {
                // Each stream's request is held at the backend until the stream is reset.
                byte[] request = howEachStreamEnds switch
                {
                    "client RST_STREAM" => [.. Http2Frames.Request(stream, path: "/hold"), .. Http2Frames.Reset(stream)],
                    "WINDOW_UPDATE past 2^31-1 (the server resets: FLOW_CONTROL_ERROR)" => [.. Http2Frames.Request(stream, path: "/hold"), .. Http2Frames.WindowIncrement(stream, int.MaxValue)],
                    _ => [.. Http2Frames.Request(stream, "POST", "/hold", endStream: false, ("content-length", "1")), .. Http2Frames.Frame(Http2Frames.Data, Http2Frames.EndStream, stream, "xx"u8)],
                };
                await socket.SendAsync(request, SocketFlags.None);
                sent++;
                if (sent % 10 == 0)
                {
                    await Task.WhenAny(closedByServer, Task.Delay(5)); // lets the gateway keep up; not a synchronisation
                }
            }
        }
        catch (SocketException)
        {
            // Closed under the client while it was still sending: the expected end.
        }

        Assert.True(await closedByServer.WaitAsync(TimeSpan.FromSeconds(10)), "the gateway never closed the connection");
        Assert.True(sent < 2000, $"the client sent {sent} open-and-reset streams before the connection closed");
        Assert.Equal(1, traffic.ResetFloodsClosed);
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("more than 50 of its HTTP/2 streams were reset", StringComparison.Ordinal));

        // An ordinary HTTP/2 client on another connection is unaffected.
        using var client = gateway.CreateHttp2ProxyClient();
        using var response = await client.GetAsync("/ok");
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public void KestrelsHttp2Limits_AreSetOnPurpose_AndKestrelLimitsKeysOverrideThem()
    {
        var defaults = new Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions().Limits.Http2;
        YarpGateway.Endpoints.GatewayKestrelSetup.SetHttp2Limits(defaults, new ConfigurationBuilder().Build());
        Assert.Equal((100, 4096, 16384, 16384, 1024 * 1024, 768 * 1024, TimeSpan.FromMinutes(1), TimeSpan.FromSeconds(20)),
            (defaults.MaxStreamsPerConnection, defaults.HeaderTableSize, defaults.MaxFrameSize, defaults.MaxRequestHeaderFieldSize,
             defaults.InitialConnectionWindowSize, defaults.InitialStreamWindowSize, defaults.KeepAlivePingDelay, defaults.KeepAlivePingTimeout));

        var overridden = new Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions().Limits.Http2;
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["MaxStreamsPerConnection"] = "20" }).Build();
        YarpGateway.Endpoints.GatewayKestrelSetup.SetHttp2Limits(overridden, configuration);
        Assert.Equal(20, overridden.MaxStreamsPerConnection);
    }

    // True once the server has closed the connection (end of stream or reset); reads and discards its frames meanwhile.
    private static async Task<bool> ReadUntilClosedAsync(Socket socket)
    {
        var buffer = new byte[64 * 1024];
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, bound.Token) > 0)
            {
            }
        }
        catch (SocketException)
        {
        }
        catch (OperationCanceledException)
        {
            return false;
        }

        return true;
    }
}
