using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using YarpGateway.Endpoints;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Endpoints;

/// <summary>The pipe HTTP/2 connections send through when Kestrel runs on the socket threads.</summary>
public class Http2SendBatchingTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private static (DefaultConnectionContext Connection, Pipe Wire) Connection()
    {
        var wire = new Pipe(); // what the socket would send
        var input = new Pipe();
        var connection = new DefaultConnectionContext { Transport = new DuplexPipe(input.Reader, wire.Writer) };
        return (connection, wire);
    }

    [Fact]
    public async Task Writes_ReachTheTransport_InOrder_AndCompletingEndsTheTransportOutput()
    {
        var (connection, wire) = Connection();
        var batching = Http2SendBatching.Install(connection);
        Assert.Same(batching, connection.Transport);

        for (var i = 0; i < 50; i++)
        {
            await connection.Transport.Output.WriteAsync(new[] { (byte)i });
        }

        await batching.CompleteAsync().WaitAsync(Bound);

        var received = new List<byte>();
        while (true)
        {
            var result = await wire.Reader.ReadAsync().AsTask().WaitAsync(Bound);
            foreach (var segment in result.Buffer)
            {
                received.AddRange(segment.ToArray());
            }

            wire.Reader.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                break;
            }
        }

        Assert.Equal(Enumerable.Range(0, 50).Select(i => (byte)i), received);
    }

    [Fact]
    public async Task AClientThatDoesNotRead_StopsKestrelsWrites_AtTheTransportsLimitPlusTwo64KiBBatches()
    {
        var wire = new Pipe(new PipeOptions(pauseWriterThreshold: 64 * 1024, resumeWriterThreshold: 32 * 1024));
        var connection = new DefaultConnectionContext { Transport = new DuplexPipe(new Pipe().Reader, wire.Writer) };
        var batching = Http2SendBatching.Install(connection);

        // At most: the transport's 64 KiB, one batch the loop wrote past it, and 64 KiB in the batching pipe.
        const int Most = (3 * 64 * 1024) + 4096;
        var written = 0;
        var chunk = new byte[4096];
        while (true)
        {
            var flush = connection.Transport.Output.WriteAsync(chunk);
            written += chunk.Length; // written, whether or not its flush now waits
            Assert.True(written <= Most, $"{written} bytes accepted with nobody reading");
            if (!flush.IsCompleted && !await WaitAsync(flush.AsTask()))
            {
                break; // Kestrel's write waits: what is buffered is bounded
            }
        }

        // The first write left waiting came once the batching pipe held its 64 KiB (a loop running late
        // only makes it come sooner, never later).
        Assert.InRange(written, Http2SendBatching.PauseBytes, Most);
        await wire.Reader.CompleteAsync();
        await batching.CompleteAsync().WaitAsync(Bound);

        // A write still waiting after a moment: the backpressure held (the upper bound above is what is tested).
        static async Task<bool> WaitAsync(Task flush) => await Task.WhenAny(flush, Task.Delay(200)) == flush;
    }

    [Fact]
    public async Task ATransportThatFailed_EndsTheLoop_AndKestrelsNextWriteSeesIt()
    {
        var (connection, wire) = Connection();
        var batching = Http2SendBatching.Install(connection);
        await wire.Reader.CompleteAsync(); // the socket is gone

        // The loop finds out on its next send and stops reading; Kestrel's writes then report the end.
        await connection.Transport.Output.WriteAsync(new byte[] { 1 });
        Assert.True(await Eventually.TrueAsync(async () => (await connection.Transport.Output.WriteAsync(new byte[] { 2 })).IsCompleted, Bound));
        await batching.CompleteAsync().WaitAsync(Bound);
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input => input;

        public PipeWriter Output => output;
    }
}
