using System.Net;

namespace YarpGateway.WebSockets;

/// <summary>
/// Stands in for the backend's content on an upgraded WebSocket response (101, or 200 to an HTTP/2
/// extended CONNECT), so that the stream YARP reads the backend through is a <see cref="BackendGateStream"/>.
/// </summary>
internal sealed class GatedBackendContent(HttpContent inner, WebSocketRelay relay) : HttpContent
{
    protected override async Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken)
        => new BackendGateStream(await inner.ReadAsStreamAsync(cancellationToken), relay);

    protected override Task<Stream> CreateContentReadStreamAsync() => CreateContentReadStreamAsync(CancellationToken.None);

    // YARP reads an upgraded response only as a stream; copying it whole is never asked for.
    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        => throw new NotSupportedException("An upgraded WebSocket is read as a stream.");

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
}
