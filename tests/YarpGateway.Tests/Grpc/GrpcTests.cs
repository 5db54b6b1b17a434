using System.Diagnostics;
using System.Text.Json.Nodes;
using global::Grpc.Core;
using global::Grpc.Net.Client;
using Google.Protobuf;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Grpc;

/// <summary>
/// A real gRPC service and client (Grpc.AspNetCore, Grpc.Net.Client) through the gateway with every default on:
/// h2c on both sides, each kind of method, metadata both ways, a status in trailers, and a deadline. Messages
/// must pass one by one in both directions (nothing buffers a stream), and a failed call is the service's
/// answer, not the gateway's.
/// </summary>
public class GrpcTests
{
    private static JsonObject Config(Uri backend) => new()
    {
        ["ReverseProxy"] = new JsonObject
        {
            ["Routes"] = new JsonObject { ["grpc"] = new JsonObject { ["ClusterId"] = "grpc", ["Match"] = new JsonObject { ["Path"] = "/{**rest}" } } },
            ["Clusters"] = new JsonObject
            {
                ["grpc"] = new JsonObject
                {
                    ["HttpRequest"] = new JsonObject { ["Version"] = "2", ["VersionPolicy"] = "RequestVersionExact" },
                    ["Destinations"] = new JsonObject { ["d"] = new JsonObject { ["Address"] = backend.ToString() } },
                },
            },
        },
    };

    private static GrpcChannel Channel(GatewayUnderTest gateway) => GrpcChannel.ForAddress(gateway.ProxyAddress, new GrpcChannelOptions
    {
        HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true },
        MaxReceiveMessageSize = 8 * 1024 * 1024,
    });

    private static CallOptions Bounded(Metadata? headers = null) => new(headers, deadline: DateTime.UtcNow.AddSeconds(20));

    [Fact]
    public async Task AClusterLeftOnHttp11_IsNamedInTheLog_OnceForManyCalls()
    {
        await using var backend = await GrpcBackend.StartAsync();
        var config = Config(backend.Address);
        config["ReverseProxy"]!["Clusters"]!["grpc"]!.AsObject().Remove("HttpRequest"); // YARP's default: HTTP/1.1 without TLS
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var channel = Channel(gateway);
        var client = new Echo.EchoClient(channel);

        for (var i = 0; i < 3; i++)
        {
            await Assert.ThrowsAsync<RpcException>(async () => await client.UnaryAsync(new EchoRequest { Text = "x" }, Bounded()));
        }

        var line = Assert.Single(gateway.Logs.Lines, l => l.Contains("[GrpcOverHttp11]", StringComparison.Ordinal));
        Assert.Contains("Route grpc sends gRPC calls to cluster grpc over HTTP/1.1", line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("application/grpc", true)]
    [InlineData("application/grpc+proto", true)]
    [InlineData("application/GRPC; charset=x", true)]
    [InlineData("application/grpc-web", false)]
    [InlineData("application/grpc-web-text", false)]
    [InlineData("application/json", false)]
    [InlineData(null, false)]
    public void WhatIsAGrpcCall(string? contentType, bool expected)
        => Assert.Equal(expected, YarpGateway.Configuration.GrpcOverHttp11TransformProvider.IsGrpc(contentType));

    [Fact]
    public async Task Unary_MetadataGoesToTheService_AndItsTrailersComeBack()
    {
        await using var backend = await GrpcBackend.StartAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend.Address));
        using var channel = Channel(gateway);
        var client = new Echo.EchoClient(channel);

        using var call = client.UnaryAsync(new EchoRequest { Text = "hello", Payload = ByteString.CopyFrom(new byte[1024 * 1024]) }, Bounded(new Metadata { { "x-caller", "test" } }));
        var reply = await call.ResponseAsync;

        Assert.Equal("hello", reply.Text);
        Assert.Equal(1024 * 1024, reply.Bytes);
        Assert.Equal("grpc-backend", call.GetTrailers().GetValue("x-served-by"));
        Assert.Equal(["test"], backend.Callers.ToArray());
    }

    [Fact]
    public async Task AServiceError_ReachesTheClientAsItsStatus_NotCountedAgainstTheDestination()
    {
        await using var backend = await GrpcBackend.StartAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend.Address));
        using var channel = Channel(gateway);
        var client = new Echo.EchoClient(channel);

        for (var i = 0; i < 5; i++)
        {
            using var call = client.UnaryAsync(new EchoRequest { Text = "missing" }, Bounded());
            var error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync);
            Assert.Equal(StatusCode.NotFound, error.StatusCode);
            Assert.Equal("no such thing", error.Status.Detail);
            Assert.Equal("asked for it", error.Trailers.GetValue("x-why"));
        }

        // A trailers-only answer is a 200 on the wire: the destination stays in and serves.
        var reply = await client.UnaryAsync(new EchoRequest { Text = "still there" }, Bounded());
        Assert.Equal("still there", reply.Text);
        Assert.Equal(0, gateway.CounterSum("gateway.proxy.errors|"));
    }

    [Fact]
    public async Task ServerStream_EachMessageArrivesBeforeTheNextIsWritten()
    {
        await using var backend = await GrpcBackend.StartAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend.Address));
        using var channel = Channel(gateway);
        var client = new Echo.EchoClient(channel);

        // The service waits 300 ms after each message: a buffered stream would deliver them together.
        using var call = client.ServerStream(new EchoRequest { Text = "tick", Count = 4, DelayMs = 300 }, Bounded());
        var arrivals = new List<TimeSpan>();
        var clock = Stopwatch.StartNew();
        await foreach (var reply in call.ResponseStream.ReadAllAsync())
        {
            Assert.Equal(arrivals.Count, reply.Index);
            arrivals.Add(clock.Elapsed);
        }

        Assert.Equal(4, arrivals.Count);
        // Two waits of 300 ms between the second and the last: a buffered stream would deliver them together. Not from the
        // first: on a cold gateway (a fresh CI machine, a Debug build) the first message can take longer than the wait
        // after it, and then the first two arrive together although nothing was buffered (seen once: 360, 361, 727, 1024 ms).
        Assert.True(arrivals[3] - arrivals[1] >= TimeSpan.FromMilliseconds(500), string.Join(", ", arrivals));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task ClientStream_ManyLargeMessages_ArriveWhole()
    {
        await using var backend = await GrpcBackend.StartAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend.Address));
        using var channel = Channel(gateway);
        var client = new Echo.EchoClient(channel);

        using var call = client.ClientStream(Bounded());
        var payload = ByteString.CopyFrom(new byte[100 * 1024]);
        for (var i = 0; i < 50; i++)
        {
            await call.RequestStream.WriteAsync(new EchoRequest { Payload = payload });
        }

        await call.RequestStream.CompleteAsync();
        var reply = await call.ResponseAsync;

        Assert.Equal(50, reply.Index);
        Assert.Equal(50L * 100 * 1024, reply.Bytes);
    }

    [Fact]
    public async Task AClientStreamTheServiceRefusesBeforeItsEnd_IsTheServicesAnswer_NotAFailingDestination()
    {
        await using var backend = await GrpcBackend.StartAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend.Address));
        using var channel = Channel(gateway);
        var client = new Echo.EchoClient(channel);
        var payload = ByteString.CopyFrom(new byte[100 * 1024]);

        // Five in a row, as many failures as eject a destination. The client keeps writing after the service's
        // answer (it does not know yet), so the gateway is still sending the stream when the service resets it.
        var statuses = new List<StatusCode>();
        for (var i = 0; i < 5; i++)
        {
            using var call = client.ClientStream(new CallOptions(deadline: DateTime.UtcNow.AddSeconds(5)));

            // The writes get a token of their own: the deadline does not bound them. When the call ends while a
            // write is under way, SocketsHttpHandler can start that write on a stream it has already finished, and
            // it then waits for flow-control credit no one will send (a hang in CI on 2026-12-01, and about one run in
            // 25 of this test alone; seen in a dump: the request body Failed, a new CreditWaiter, nothing cancelled).
            using var writes = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await call.RequestStream.WriteAsync(new EchoRequest { Text = "reject" }, writes.Token);
                for (var m = 0; m < 20; m++)
                {
                    await call.RequestStream.WriteAsync(new EchoRequest { Payload = payload }, writes.Token);
                }

                await call.RequestStream.CompleteAsync();
            }
            catch (Exception e) when (e is RpcException or HttpRequestException or IOException or OperationCanceledException)
            {
                // The call ended while the client was still writing: what it may see.
            }

            try
            {
                await call.ResponseAsync;
                statuses.Add(StatusCode.OK);
            }
            catch (RpcException e)
            {
                statuses.Add(e.StatusCode);
            }
        }

        // The client's own HTTP/2 stack can lose a call here, through a gateway or not (below), hence "most".
        var answered = statuses.Count(s => s == StatusCode.InvalidArgument);
        Assert.True(answered >= 3, string.Join(", ", statuses));

        // The service answered (a 200 with grpc-status 3) and reset the rest of the stream, as HTTP/2 allows:
        // nothing failed, though YARP reports the rest of the body as unsent. A call the client's stack lost is
        // another matter: its stream stalls until the service's own deadline (grpc-timeout) resets it with CANCEL,
        // and that 502 counts, as it should. So the count is at most the calls the client did not see answered
        // (before the fix it was every call, answered or not).
        var counted = gateway.CounterSum("gateway.proxy.errors|cluster=grpc|error=request_body_destination");
        Assert.True(counted <= statuses.Count - answered, $"{counted} counted; the client saw {string.Join(", ", statuses)}");
        Assert.Equal(0, gateway.CounterSum("gateway.outlier.ejections_skipped|") + gateway.CounterSum("gateway.outlier.ejections|"));
        if (answered == statuses.Count)
        {
            Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("[ProxyError] Proxy error request_body_destination", StringComparison.Ordinal));
        }
    }

    [Theory]
    [InlineData("/busy/Answer")] // the status alone
    [InlineData("/busy/Stream")] // a message, then the status: a body of unknown length, through the response gate
    public async Task AnAnswerBeforeTheEndOfTheClientsStream_IsFollowedByAResetWithNoError_NotCountedAsTheClients(string path)
    {
        await using var backend = await GrpcBackend.StartAsync();
        // Two resets allowed a connection, and four calls on it: the gateway's own resets must not close it. (They did
        // not reach that count even without TrafficCounters' check of them, tried: RequestAborted was not yet cancelled
        // where it looks. The check stays for the case where it is; GrpcAnswerResetTests holds it.)
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend.Address), "--Gateway:Http2:MaxStreamResets=2");
        using var socket = await Functional.RawSocket.ConnectAsync(gateway.ProxyAddress);
        await using var connection = new System.Net.Sockets.NetworkStream(socket);
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await connection.WriteAsync((byte[])[.. Hostile.Http2Frames.Preface, .. Hostile.Http2Frames.EmptySettings()], bound.Token);

        // A first message, and no END_STREAM: the client may still be sending. The service answers and stays busy, so
        // nothing ends the stream but the gateway: without its reset, the client would wait for it until YARP's activity
        // timeout (100 s), and .NET's gRPC client, which does not wait, loses about one such call in 30 (see
        // AClientStreamTheServiceRefusesBeforeItsEnd_IsTheServicesAnswer_NotAFailingDestination).
        byte[] message = [0, 0, 0, 0, 2, 0x0a, 0]; // gRPC's length prefix, then an EchoRequest with text ""
        for (var stream = 1; stream <= 7; stream += 2)
        {
            await connection.WriteAsync((byte[])
            [
                .. Hostile.Http2Frames.Request(stream, method: "POST", path: path, endStream: false, ("content-type", "application/grpc"), ("te", "trailers")),
                .. Hostile.Http2Frames.Frame(Hostile.Http2Frames.Data, 0, stream, message),
            ], bound.Token);

            using var afterAnswer = CancellationTokenSource.CreateLinkedTokenSource(bound.Token);
            var answered = false;
            while (true)
            {
                (byte Type, byte Flags, int StreamId, byte[] Payload) frame;
                try
                {
                    frame = await Hostile.Http2Frames.ReadAsync(connection, afterAnswer.Token);
                }
                catch (OperationCanceledException) when (answered && !bound.IsCancellationRequested)
                {
                    Assert.Fail($"stream {stream}: answered, and not reset within 5 s");
                    throw;
                }

                Assert.NotEqual(Hostile.Http2Frames.GoAway, frame.Type);
                if (frame.StreamId != stream)
                {
                    continue; // SETTINGS, WINDOW_UPDATE for the connection
                }

                if (frame.Type == Hostile.Http2Frames.Headers && (frame.Flags & Hostile.Http2Frames.EndStream) != 0)
                {
                    answered = true; // the service's status, the answer complete
                    afterAnswer.CancelAfter(TimeSpan.FromSeconds(5));
                }
                else if (frame.Type == Hostile.Http2Frames.RstStream)
                {
                    Assert.True(answered, $"stream {stream} reset before its answer");
                    Assert.Equal(0u, System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(frame.Payload)); // NO_ERROR
                    break;
                }
            }
        }

        Assert.Equal(0, gateway.CounterSum("gateway.proxy.errors|"));
    }

    [Fact]
    public async Task Duplex_EachAnswerComesBackBeforeTheNextMessageIsSent()
    {
        await using var backend = await GrpcBackend.StartAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend.Address));
        using var channel = Channel(gateway);
        var client = new Echo.EchoClient(channel);

        // Ping-pong: the next message goes only once the last one's answer is back, so a gateway that held
        // either direction back (a request body buffered before it is sent, a response flushed only when full)
        // would hang here until the deadline.
        using var call = client.Duplex(Bounded());
        for (var i = 0; i < 20; i++)
        {
            await call.RequestStream.WriteAsync(new EchoRequest { Text = $"ping {i}" });
            Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
            Assert.Equal($"ping {i}", call.ResponseStream.Current.Text);
            Assert.Equal(i, call.ResponseStream.Current.Index);
        }

        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task ADeadlineThatPasses_IsDeadlineExceeded_AndTheNextCallIsServed()
    {
        await using var backend = await GrpcBackend.StartAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(Config(backend.Address));
        using var channel = Channel(gateway);
        var client = new Echo.EchoClient(channel);

        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await client.UnaryAsync(new EchoRequest { Text = "slow", DelayMs = 10_000 }, deadline: DateTime.UtcNow.AddMilliseconds(300)));

        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);

        // The destination is not blamed for the client's deadline (it is the only one: ejected, the next call would
        // get 503), and the next call is served.
        var reply = await client.UnaryAsync(new EchoRequest { Text = "after" }, Bounded());
        Assert.Equal("after", reply.Text);
    }
}
