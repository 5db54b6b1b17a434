using System.Buffers;
using System.IO.Pipelines;

namespace YarpGateway.RequestFiltering;

/// <summary>
/// The body of an HTTP/1.x request as YARP reads it: Kestrel's own reader, with a read's cancellation passed on as
/// <see cref="PipeReader.CancelPendingRead"/> rather than as a token.
/// <para>
/// Kestrel's HTTP/1.x body reader stays "reading" after a read that a token cancels (dotnet/aspnetcore#17840): its
/// drain after the answer then fails ("the body reader is in an invalid state") and the connection closes on the rest
/// of the body, so that a client still writing it meets a reset instead of the answer. YARP's read is cancelled that
/// way whenever the destination stops the body while the client is between two sends: an HTTP/2 backend's 413 and
/// reset of the stream, or its stream or connection lost mid-upload. A read ended with
/// <see cref="PipeReader.CancelPendingRead"/> is advanced like any other, so the reader stays usable.
/// </para>
/// It also says whether the body was read to its end, for <see cref="RefusedBodyDrain"/>.
/// </summary>
internal sealed class Http1RequestBody(PipeReader reader) : Stream
{
    private static readonly Action<object?> CancelRead = static state => ((PipeReader)state!).CancelPendingRead();

    private volatile bool _reading;

    /// <summary>Kestrel's reader of the body.</summary>
    public PipeReader Reader => reader;

    /// <summary>Whether anything asked for the body through this stream.</summary>
    public bool Started { get; private set; }

    /// <summary>Whether the body was read to its end.</summary>
    public bool ReadToEnd { get; private set; }

    /// <summary>Whether a read is waiting for the client (none should be, once YARP has returned).</summary>
    public bool Reading => _reading;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<int>(cancellationToken);
        }

        Started = true;
        try
        {
            // Synchronous fast path: bytes already here (a small body arrives with its headers).
            if (reader.TryRead(out var result) && TryTake(result, buffer, cancellationToken, out var read))
            {
                return new ValueTask<int>(read);
            }
        }
        catch (Exception ex)
        {
            return ValueTask.FromException<int>(ex);
        }

        return ReadWaitingAsync(buffer, cancellationToken);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count)
        => throw new InvalidOperationException("Synchronous reads of the request body are not allowed.");

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    // Pooled, as Kestrel's own reads are: a slow upload waits on nearly every read (25 MB allocated for 512 MB in
    // 2 runs of 9 without it, against at most 232 KB in 6 with it).
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> ReadWaitingAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        _reading = true;
        try
        {
            using var registration = cancellationToken.UnsafeRegister(CancelRead, reader);
            while (true)
            {
                var result = await reader.ReadAsync(CancellationToken.None);
                if (TryTake(result, buffer, cancellationToken, out var read))
                {
                    return read;
                }
            }
        }
        finally
        {
            _reading = false;
        }
    }

    /// <summary>
    /// Takes what <paramref name="result"/> holds into <paramref name="destination"/> and advances the reader, always.
    /// False when there is nothing to return yet: the caller reads again.
    /// </summary>
    private bool TryTake(ReadResult result, Memory<byte> destination, CancellationToken cancellationToken, out int read)
    {
        read = 0;
        var buffer = result.Buffer;
        if (result.IsCanceled)
        {
            reader.AdvanceTo(buffer.Start);
            cancellationToken.ThrowIfCancellationRequested();
            return false; // a cancellation meant for an earlier read, whose token fired as it returned
        }

        if (buffer.IsEmpty)
        {
            reader.AdvanceTo(buffer.End);
            ReadToEnd = result.IsCompleted;
            return result.IsCompleted;
        }

        if (destination.IsEmpty)
        {
            reader.AdvanceTo(buffer.Start); // a zero-byte read: bytes are here, none taken, the next read has them at once
            return true;
        }

        // Lengths are taken before AdvanceTo, which may return the buffer's memory to the pool.
        read = (int)Math.Min(buffer.Length, destination.Length);
        var taken = buffer.Slice(0, read);
        taken.CopyTo(destination.Span);
        ReadToEnd = result.IsCompleted && read == buffer.Length;
        reader.AdvanceTo(taken.End);
        return true;
    }
}
