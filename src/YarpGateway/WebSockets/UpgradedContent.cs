using System.Net;

namespace YarpGateway.WebSockets;

/// <summary>
/// The content of an upgraded response (101, or 200 to an HTTP/2 extended CONNECT): YARP reads it only
/// as a stream, the two-way stream to the backend. Used to hand the backend's stream to the
/// <see cref="WebSocketRelay"/> when YARP opens it, and by <see cref="UpgradeConnector"/> for its own socket. One
/// class per use rather than a delegate, as a WebSocket keeps its content for life.
/// </summary>
internal abstract class UpgradedContent : HttpContent
{
    /// <summary>
    /// The backend's own content, handed to the relay, which copies it. When YARP opens it, the 101 has gone
    /// to the client with every header copied and every transform run: the heads of
    /// <paramref name="response"/> and of its request, and the client's request headers, are released
    /// then, as a WebSocket would otherwise keep them (their header stores, about 0.5 KB, and what the
    /// client sent) for its whole life.
    /// </summary>
    public static UpgradedContent ForRelay(HttpContent inner, WebSocketRelay relay, HttpResponseMessage response) => new RelayContent(inner, relay, response);

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

    private sealed class RelayContent : UpgradedContent
    {
        private readonly WebSocketRelay _relay;
        private HttpResponseMessage? _response;

        // The backend's stream comes from one or the other. The lean connector's own content is
        // read here directly: opened through it, HttpContent would keep its task (and the content
        // itself) for the WebSocket's life, about 130 bytes. Both are let go once the relay owns the stream.
        private HttpContent? _inner;
        private Stream? _stream;

        public RelayContent(HttpContent inner, WebSocketRelay relay, HttpResponseMessage response)
        {
            _relay = relay;
            _response = response;
            if (inner is OwnedStream owned)
            {
                _stream = owned.Stream;
            }
            else
            {
                _inner = inner;
            }
        }

        protected override async Task<Stream> OpenAsync(CancellationToken cancellationToken)
        {
            if (Interlocked.Exchange(ref _response, null) is { } head)
            {
                ReleaseHead(head, _inner);
                _relay.ReleaseClientRequestHead();

                // Nothing reads the content again, but SocketsHttpHandler's HTTP/2 stream keeps the response for the
                // WebSocket's life, and with it this content and the task HttpContent caches when it is opened.
                head.Content = null;
            }

            var backend = _stream ?? await _inner!.ReadAsStreamAsync(cancellationToken);
            _stream = null;
            _inner = null;
            return _relay.AttachBackend(backend);
        }

        private static void ReleaseHead(HttpResponseMessage response, HttpContent? inner)
        {
            response.Headers.Clear();
            response.ReasonPhrase = null;
            response.RequestMessage?.Headers.Clear();
            inner?.Headers.Clear();
        }

        // Before it is opened (YARP's handshake failed, say), the backend's connection is this content's to close.
        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _inner?.Dispose();
                _stream?.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    private sealed class OwnedStream(Stream stream) : UpgradedContent
    {
        public Stream Stream => stream;

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
