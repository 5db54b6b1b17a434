using System.Net;
using System.Net.WebSockets;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.WebSockets;

/// <summary>What a client's WebSocket handshake through the gateway was answered: its status, the socket closed at once if it opened.</summary>
internal static class WebSocketHandshake
{
    /// <summary>
    /// The status of a handshake to <paramref name="path"/> (with <paramref name="query"/>) over HTTP <paramref name="version"/>,
    /// with <paramref name="origin"/> as a browser would send it: 101 (HTTP/1.1) or 200 (HTTP/2) when it opened.
    /// </summary>
    public static async Task<HttpStatusCode> StatusAsync(GatewayUnderTest gateway, string version, string path, CancellationToken cancellationToken, string query = "", string? origin = null)
    {
        using var socket = new ClientWebSocket();
        socket.Options.HttpVersion = Version.Parse(version);
        socket.Options.HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        socket.Options.CollectHttpResponseDetails = true;
        if (origin is not null)
        {
            socket.Options.SetRequestHeader("Origin", origin);
        }

        try
        {
            await socket.ConnectAsync(new UriBuilder(gateway.ProxyAddress) { Scheme = "ws", Path = path, Query = query }.Uri, new HttpMessageInvoker(new SocketsHttpHandler()), cancellationToken);
            await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", cancellationToken);
        }
        catch (WebSocketException)
        {
            // Refused: the status says how.
        }

        return socket.HttpStatusCode;
    }

    /// <summary>The status an opened handshake gets over <paramref name="version"/>.</summary>
    public static HttpStatusCode Opened(string version) => version == "1.1" ? HttpStatusCode.SwitchingProtocols : HttpStatusCode.OK;
}
