using System.Buffers;
using System.IO.Pipelines;

namespace YarpGateway.ResponseBuffering;

/// <summary>
/// The client's side of one proxied response body, as YARP's copy sees it (<see cref="Output"/>), and what makes
/// that copy wait for the client (<see cref="WaitAsync"/>, from <see cref="GatedResponseContent"/>'s reads). A
/// write copies the bytes into Kestrel's response pipe and starts its flush without waiting for it; the wait for a
/// slow client happens in the copy's next read of the backend, where YARP, whose zero-byte read finds it pending,
/// has given its 64 KiB copy buffer back to the pool. Without it the copy waited in the write with that buffer, for
/// as long as the client took: 64 KiB more per slow download, per HTTP/2 stream.
/// </summary>
internal sealed class ResponseWriteGate(PipeWriter client, ResponseBufferingCounters counters)
{
    private ValueTask<FlushResult> _flush;
    private bool _flushing;
    private Exception? _error;
    private Stream? _output;

    /// <summary>Whether <paramref name="stream"/> is a gate's <see cref="Output"/>.</summary>
    public static bool IsOutput(Stream stream) => stream is OutputStream;

    /// <summary>What YARP writes the body to, in place of the response's own stream.</summary>
    public Stream Output => _output ??= new OutputStream(this);

    /// <summary>Completes when the last write has reached the client's side (Kestrel's flush); completed at once when it has.</summary>
    public ValueTask WaitAsync()
    {
        if (!_flushing)
        {
            return ValueTask.CompletedTask;
        }

        if (_flush.IsCompleted)
        {
            Observe();
            return ValueTask.CompletedTask;
        }

        return WaitSlowAsync();
    }

    private async ValueTask WaitSlowAsync()
    {
        counters.Waiting();
        try
        {
            if ((await _flush.ConfigureAwait(false)).IsCompleted)
            {
                _error = ClientGone();
            }
        }
        catch (Exception ex)
        {
            _error = ex; // the client's failure, thrown from the next write: YARP must blame the client, not the backend
        }
        finally
        {
            _flushing = false;
            _flush = default;
            counters.Done();
        }
    }

    private void Observe()
    {
        try
        {
            if (_flush.Result.IsCompleted)
            {
                _error = ClientGone();
            }
        }
        catch (Exception ex)
        {
            _error = ex;
        }

        _flushing = false;
        _flush = default;
    }

    private ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        if (_error is { } error)
        {
            return ValueTask.FromException(error);
        }

        if (cancellationToken.IsCancellationRequested)
        {
            // The client went away (or the activity timeout fired): stop here. Reads of a backend body that is already
            // buffered do not look at the token, and Kestrel drops writes to an aborted response without a word, so
            // the copy would otherwise run to the body's end and count as a success.
            return ValueTask.FromCanceled(cancellationToken);
        }

        if (_flushing)
        {
            // Not through our own reads (a caller other than YARP's copy): keep writes in order.
            return WriteAfterFlushAsync(buffer, cancellationToken);
        }

        client.Write(buffer.Span); // copied: the caller may reuse or return its buffer as soon as this returns
        var flush = client.FlushAsync(cancellationToken);
        if (flush.IsCompleted)
        {
            if (!flush.IsCompletedSuccessfully)
            {
                return new ValueTask(flush.AsTask());
            }

            return flush.Result.IsCompleted ? ValueTask.FromException(ClientGone()) : ValueTask.CompletedTask;
        }

        _flush = flush;
        _flushing = true;
        return ValueTask.CompletedTask;
    }

    /// <summary>The response's pipe reports its reader done: the client's side of the connection is gone.</summary>
    private static IOException ClientGone() => new("The client's side of the response closed before the body was sent.");

    private async ValueTask WriteAfterFlushAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        await WaitAsync().ConfigureAwait(false);
        await WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
    }

    private async Task FlushAsync(CancellationToken cancellationToken)
    {
        await WaitAsync().ConfigureAwait(false);
        if (_error is { } error)
        {
            throw error;
        }

        await client.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private sealed class OutputStream(ResponseWriteGate gate) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => gate.WriteAsync(buffer, cancellationToken);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => gate.WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override Task FlushAsync(CancellationToken cancellationToken) => gate.FlushAsync(cancellationToken);

        public override void Flush() => throw new NotSupportedException("Use FlushAsync.");

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("Use WriteAsync.");

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
