using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace YarpGateway.Endpoints;

/// <summary>
/// An HTTP/2 connection's output, sent from the thread pool when Kestrel runs on the socket threads
/// (<see cref="SocketTransportSetup"/>, one CPU). There, every flush of Kestrel's frame writer was sent
/// at once, inline: one <c>send</c> per stream's frames, where the thread-pool transport gathers the
/// frames of every stream flushed meanwhile into one. Kestrel now writes into a pipe whose reader
/// resumes on the thread pool, after the work already queued, and forwards everything that gathered
/// in one write to the socket. HTTP/1.1 connections keep the inline path (one response at a time, no
/// frames to gather). Measured on one pinned core with h2load (64 connections, 10 streams each):
/// 20,400-28,000 requests a second before, 29,500-36,400 with this, the same as turning inline
/// scheduling off for every connection (docs/performance-history.md). The cost is one copy of the
/// response bytes, and for a client that does not read, the 64 KiB this pipe holds besides what the
/// transport holds (HTTP/2 flow control bounds what Kestrel writes per stream in any case).
/// </summary>
internal sealed class Http2SendBatching : IDuplexPipe
{
    /// <summary>What Kestrel may write ahead of the socket: the pipe's default pause threshold.</summary>
    public const int PauseBytes = 64 * 1024;

    private readonly IDuplexPipe _transport;
    private readonly Pipe _pipe;
    private readonly Task _sending;

    private Http2SendBatching(IDuplexPipe transport, MemoryPool<byte>? pool)
    {
        _transport = transport;
        _pipe = new Pipe(new PipeOptions(pool, readerScheduler: PipeScheduler.ThreadPool, writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: PauseBytes, resumeWriterThreshold: PauseBytes / 2, useSynchronizationContext: false));
        _sending = SendAsync();
    }

    public PipeReader Input => _transport.Input;

    public PipeWriter Output => _pipe.Writer;

    /// <summary>Puts the batching pipe between Kestrel and the connection's transport.</summary>
    public static Http2SendBatching Install(ConnectionContext connection)
    {
        var batching = new Http2SendBatching(connection.Transport, connection.Features.Get<IMemoryPoolFeature>()?.MemoryPool);
        connection.Transport = batching;
        return batching;
    }

    /// <summary>
    /// After Kestrel is done with the connection: sends what it wrote last (its GOAWAY) before the
    /// transport is disposed, and ends the send loop.
    /// </summary>
    public async Task CompleteAsync()
    {
        await _pipe.Writer.CompleteAsync();
        await _sending;
    }

    private async Task SendAsync()
    {
        await Task.Yield(); // the loop belongs to the thread pool, not to the caller's stack
        Exception? error = null;
        try
        {
            while (true)
            {
                var result = await _pipe.Reader.ReadAsync();
                foreach (var segment in result.Buffer)
                {
                    _transport.Output.Write(segment.Span);
                }

                _pipe.Reader.AdvanceTo(result.Buffer.End);
                var flush = await _transport.Output.FlushAsync();
                if (result.IsCompleted || flush.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or ConnectionAbortedException or ConnectionResetException or OperationCanceledException or InvalidOperationException)
        {
            error = ex; // the connection is gone: Kestrel's next write fails with it
        }

        await _pipe.Reader.CompleteAsync(error);
        await _transport.Output.CompleteAsync(error);
    }
}
