using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Yarp.ReverseProxy.Forwarder;
using YarpGateway.Endpoints;
using YarpGateway.Resilience;
using YarpGateway.Tests.Resilience;

namespace YarpGateway.Tests.Endpoints;

/// <summary>
/// The gateway's own reset of a gRPC call's stream after its answer, and what the error log and the HTTP/2 reset limit
/// make of it. The functional tests (GrpcTests) pass with or without either's check of the reset: there, YARP's copy of
/// the body ends quietly and the request's abort is not yet seen where the counters look. These hold the checks themselves.
/// </summary>
public class GrpcAnswerResetTests
{
    [Theory]
    [InlineData(ForwarderError.RequestBodyCanceled)]
    [InlineData(ForwarderError.RequestBodyClient)]
    public async Task TheBodysFailure_AfterTheGatewayResetTheAnsweredCall_IsNotAFailure(ForwarderError error)
    {
        var (context, reset) = GrpcCall();
        using var _ = reset;

        await GrpcAnswerReset.Middleware(AnswerWithoutReadingTheBody)(context);

        Assert.Equal([0], reset.Codes); // NO_ERROR, once
        Assert.True(GrpcAnswerReset.WasResetAfterAnswer(context));
        Assert.True(context.RequestAborted.IsCancellationRequested); // as Kestrel cancels it with the reset
        Assert.True(ProxyErrorLog.IsAnswerBeforeTheBody(context, new TestForwarderError(error, new OperationCanceledException())));
    }

    [Theory]
    [InlineData(ForwarderError.RequestBodyCanceled)]
    [InlineData(ForwarderError.RequestBodyClient)]
    public async Task TheBodysFailure_WhenTheClientResetTheCall_StaysTheClients(ForwarderError error)
    {
        var (context, reset) = GrpcCall();
        using var _ = reset;

        // The client resets the stream before any answer: the gateway resets nothing.
        await GrpcAnswerReset.Middleware(c =>
        {
            reset.ByClient();
            return Task.CompletedTask;
        })(context);

        Assert.Empty(reset.Codes);
        Assert.False(GrpcAnswerReset.WasResetAfterAnswer(context));
        Assert.False(ProxyErrorLog.IsAnswerBeforeTheBody(context, new TestForwarderError(error, new OperationCanceledException())));
    }

    [Fact]
    public async Task ACallWhoseClientStreamEnded_IsNotReset()
    {
        var (context, reset) = GrpcCall(clientStream: []);
        using var _ = reset;

        await GrpcAnswerReset.Middleware(async c =>
        {
            Assert.Equal(0, await c.Request.Body.ReadAsync(new byte[16])); // END_STREAM read
            await c.Features.Get<IHttpResponseBodyFeature>()!.CompleteAsync();
        })(context);

        Assert.Empty(reset.Codes);
        Assert.False(GrpcAnswerReset.WasResetAfterAnswer(context));
    }

    [Fact]
    public async Task TheGatewaysResets_DoNotCountTowardsTheConnectionsResetLimit_TheClientsDo()
    {
        var counters = new TrafficCounters(new FakeTimeProvider(), Microsoft.Extensions.Options.Options.Create(new Http2Options { MaxStreamResets = 2 }), NullLogger<TrafficCounters>.Instance);
        var connection = new DefaultConnectionContext("c1");
        var open = new TaskCompletionSource();
        var running = counters.Wrap(_ => open.Task, new KestrelServerLimits())(connection);

        // Four calls answered and then reset by the gateway: none is the client's reset.
        for (var i = 0; i < 4; i++)
        {
            var (context, reset) = GrpcCall();
            using var _ = reset;
            context.Connection.Id = "c1";
            counters.RequestStarted(upgrade: false);
            await GrpcAnswerReset.Middleware(AnswerWithoutReadingTheBody)(context);
            counters.RequestEnded(context, upgrade: false);
        }

        Assert.Equal(0, counters.ResetFloodsClosed);
        Assert.False(connection.ConnectionClosed.IsCancellationRequested);

        // Three calls the client resets: past the limit of two, the connection is closed.
        for (var i = 0; i < 3; i++)
        {
            var (context, reset) = GrpcCall();
            using var _ = reset;
            context.Connection.Id = "c1";
            counters.RequestStarted(upgrade: false);
            await GrpcAnswerReset.Middleware(c =>
            {
                reset.ByClient();
                return Task.CompletedTask;
            })(context);
            counters.RequestEnded(context, upgrade: false);
        }

        Assert.Equal(1, counters.ResetFloodsClosed);
        open.SetResult();
        await running.WaitAsync(TimeSpan.FromSeconds(10));
    }

    // The service answers at once (YARP completes the response) without reading the client's stream to its end.
    private static Task AnswerWithoutReadingTheBody(HttpContext context) => context.Features.Get<IHttpResponseBodyFeature>()!.CompleteAsync();

    private static (DefaultHttpContext Context, FakeReset Reset) GrpcCall(byte[]? clientStream = null)
    {
        var context = new DefaultHttpContext();
        context.Request.Protocol = "HTTP/2";
        context.Request.Method = "POST";
        context.Request.ContentType = "application/grpc";
        context.Request.Body = clientStream is null ? new NeverEndingStream() : new MemoryStream(clientStream);
        var reset = new FakeReset();
        context.RequestAborted = reset.Aborted;
        context.Features.Set<IHttpResetFeature>(reset);
        context.Features.Set<IHttpResponseBodyFeature>(new StreamResponseBodyFeature(Stream.Null));
        return (context, reset);
    }

    private sealed class FakeReset : IHttpResetFeature, IDisposable
    {
        private readonly CancellationTokenSource _aborted = new();

        public List<int> Codes { get; } = [];

        public CancellationToken Aborted => _aborted.Token;

        public void Reset(int errorCode)
        {
            Codes.Add(errorCode);
            _aborted.Cancel();
        }

        public void ByClient() => _aborted.Cancel();

        public void Dispose() => _aborted.Dispose();
    }

    // A client stream with no END_STREAM yet: a read would wait (none is made before the answer here).
    private sealed class NeverEndingStream : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new InvalidOperationException("not read in these tests");

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
