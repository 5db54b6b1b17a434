using System.Net;

namespace YarpGateway.ResponseBuffering;

/// <summary>
/// The backend's response body as YARP's copy reads it: each read, the zero-byte read YARP issues before it rents its
/// copy buffer included, first waits for the client to take the last write (<see cref="ResponseWriteGate.WaitAsync"/>).
/// When the client keeps up that wait is already over and the read is the backend's own.
/// </summary>
internal sealed class GatedResponseContent(HttpContent inner, ResponseWriteGate gate) : HttpContent
{
    protected override async Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken)
        => new GatedStream(await inner.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), gate);

    protected override Task<Stream> CreateContentReadStreamAsync() => CreateContentReadStreamAsync(CancellationToken.None);

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => inner.CopyToAsync(stream, context);

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    private sealed class GatedStream(Stream inner, ResponseWriteGate gate) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var wait = gate.WaitAsync();
            return wait.IsCompletedSuccessfully ? inner.ReadAsync(buffer, cancellationToken) : ReadAfterWaitAsync(wait, buffer, cancellationToken);
        }

        private async ValueTask<int> ReadAfterWaitAsync(ValueTask wait, Memory<byte> buffer, CancellationToken cancellationToken)
        {
            await wait.ConfigureAwait(false);
            return await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("Use ReadAsync.");

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
