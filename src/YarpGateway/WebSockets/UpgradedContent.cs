using System.Net;

namespace YarpGateway.WebSockets;

/// <summary>
/// The content of an upgraded response (101, or 200 to an HTTP/2 extended CONNECT): YARP reads it only
/// as a stream, the two-way stream to the backend. Used to hand YARP the backend through a
/// <see cref="BackendGateStream"/>, and by <see cref="UpgradeConnector"/> for its own socket.
/// </summary>
internal sealed class UpgradedContent(Func<CancellationToken, Task<Stream>> open, IDisposable owned) : HttpContent
{
    /// <summary>The backend's own content, read through the relay's gate.</summary>
    public static UpgradedContent Gated(HttpContent inner, WebSocketRelay relay)
        => new(async cancellationToken => new BackendGateStream(await inner.ReadAsStreamAsync(cancellationToken), relay), inner);

    /// <summary>A stream the content owns.</summary>
    public static UpgradedContent Of(Stream stream) => new(_ => Task.FromResult(stream), stream);

    protected override Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken) => open(cancellationToken);

    protected override Task<Stream> CreateContentReadStreamAsync() => open(CancellationToken.None);

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        => throw new NotSupportedException("An upgraded connection is read as a stream.");

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            owned.Dispose();
        }

        base.Dispose(disposing);
    }
}
