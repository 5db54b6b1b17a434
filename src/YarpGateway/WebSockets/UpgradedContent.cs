using System.Net;

namespace YarpGateway.WebSockets;

/// <summary>
/// The content of an upgraded response (101, or 200 to an HTTP/2 extended CONNECT): YARP reads it only
/// as a stream, the two-way stream to the backend. Used to hand YARP the backend through a
/// <see cref="BackendGateStream"/>, and by <see cref="UpgradeConnector"/> for its own socket. One
/// class per use rather than a delegate, as a WebSocket keeps its content for life.
/// </summary>
internal abstract class UpgradedContent : HttpContent
{
    /// <summary>The backend's own content, read through the relay's gate.</summary>
    public static UpgradedContent Gated(HttpContent inner, WebSocketRelay relay) => new GatedContent(inner, relay);

    /// <summary>A stream the content owns.</summary>
    public static UpgradedContent Of(Stream stream) => new OwnedStream(stream);

    protected abstract Task<Stream> OpenAsync(CancellationToken cancellationToken);

    protected override Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken) => OpenAsync(cancellationToken);

    protected override Task<Stream> CreateContentReadStreamAsync() => OpenAsync(CancellationToken.None);

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        => throw new NotSupportedException("An upgraded connection is read as a stream.");

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }

    private sealed class GatedContent(HttpContent inner, WebSocketRelay relay) : UpgradedContent
    {
        protected override async Task<Stream> OpenAsync(CancellationToken cancellationToken)
            => new BackendGateStream(await inner.ReadAsStreamAsync(cancellationToken), relay);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    private sealed class OwnedStream(Stream stream) : UpgradedContent
    {
        protected override Task<Stream> OpenAsync(CancellationToken cancellationToken) => Task.FromResult(stream);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                stream.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
