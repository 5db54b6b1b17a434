using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace YarpGateway.WebSockets;

/// <summary>
/// Opens HTTP/1.1 WebSocket upgrades to plain-http backends itself instead of through
/// <c>SocketsHttpHandler</c>: it connects, writes the request head, reads the response head into a
/// small buffer it gives back, and on a 101 returns the socket as the response stream
/// (<see cref="UpgradedSocketStream"/>), which waits with zero-byte reads and holds no buffer while
/// the WebSocket is idle. A pooled <c>SocketsHttpHandler</c> connection keeps a 4 KiB read and a
/// 4 KiB write buffer for a WebSocket's whole life. Everything else (ordinary requests, https,
/// HTTP/2 extended CONNECT) goes to the inner handler.
/// </summary>
internal sealed class UpgradeConnector(HttpMessageHandler inner, TimeSpan connectTimeout, Encoding requestHeaderEncoding, Endpoints.BackendConnectionLimit connections) : DelegatingHandler(inner)
{
    /// <summary>The most a backend's response head may be, as <c>SocketsHttpHandler</c>'s default (64 KiB).</summary>
    internal const int MaxResponseHeadBytes = 64 * 1024;

    /// <summary>The most of a refusal's body (a non-101 answer) that is passed on to the client.</summary>
    internal const int MaxRefusalBodyBytes = 1024 * 1024;

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        => IsPlainWebSocketUpgrade(request) ? UpgradeAsync(request, cancellationToken) : base.SendAsync(request, cancellationToken);

    internal static bool IsPlainWebSocketUpgrade(HttpRequestMessage request)
        => request.Method == HttpMethod.Get
            && request.Version.Major == 1
            && request.RequestUri is { Scheme: "http" }
            && request.Content is null
            && AsksForWebSocket(request.Headers);

    // The raw Upgrade values, not the typed Headers.Upgrade: parsing that builds a header collection
    // and product objects the request keeps for the WebSocket's life (about 120 bytes).
    private static bool AsksForWebSocket(System.Net.Http.Headers.HttpRequestHeaders headers)
    {
        if (!headers.NonValidated.TryGetValues("Upgrade", out var values))
        {
            return false;
        }

        foreach (var value in values)
        {
            foreach (var range in value.AsSpan().Split(','))
            {
                var product = value.AsSpan(range).Trim(" \t");
                var slash = product.IndexOf('/');
                if ((slash < 0 ? product : product[..slash]).Equals("websocket", StringComparison.OrdinalIgnoreCase))
                {
                    return true;
                }
            }
        }

        return false;
    }

    private async Task<HttpResponseMessage> UpgradeAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var socket = await ConnectAsync(request.RequestUri!, cancellationToken);
        try
        {
            await SendHeadAsync(socket, request, requestHeaderEncoding, cancellationToken);
            var response = await ReadResponseAsync(socket, request, cancellationToken);
            if (response.StatusCode != HttpStatusCode.SwitchingProtocols)
            {
                socket.Dispose(); // a refusal's body has been read whole; the connection is not reused
            }

            return response;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private async Task<Socket> ConnectAsync(Uri uri, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(connectTimeout);
        try
        {
            return await connections.ConnectAsync(new DnsEndPoint(uri.IdnHost, uri.Port), timeout.Token);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or Endpoints.BackendConnectionLimitException)
        {
            if (ex is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            // As SocketsHttpHandler reports them, so that YARP, retries and outlier ejection see the same errors.
            if (ex is OperationCanceledException)
            {
                throw new TaskCanceledException($"The connection to {uri.Authority} timed out.", new TimeoutException($"A connection could not be established within the configured ConnectTimeout ({connectTimeout})."));
            }

            throw new HttpRequestException(HttpRequestError.ConnectionError, $"{ex.Message} ({uri.Authority})", ex);
        }
    }

    // Header values in the encoding SocketsHttpHandler would use for the cluster (HeaderEncodings): UTF-8 unless it names one.
    private static async Task SendHeadAsync(Socket socket, HttpRequestMessage request, Encoding headerEncoding, CancellationToken cancellationToken)
    {
        var uri = request.RequestUri!;
        PropagateTraceContext(request);
        var head = new StringBuilder(512);
        head.Append("GET ").Append(uri.PathAndQuery).Append(" HTTP/1.1\r\n");
        head.Append("Host: ").Append(request.Headers.Host ?? uri.Authority).Append("\r\n");
        foreach (var (name, values) in request.Headers.NonValidated)
        {
            if (string.Equals(name, "Host", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            foreach (var value in values)
            {
                if (value.AsSpan().IndexOfAny('\r', '\n') >= 0)
                {
                    throw new HttpRequestException(HttpRequestError.InvalidResponse, $"The request header '{name}' holds a line break.");
                }

                head.Append(name).Append(": ").Append(value).Append("\r\n");
            }
        }

        head.Append("\r\n");
        var bytes = headerEncoding.GetBytes(head.ToString());
        using var send = new SocketSend(); // not the socket's own send operation, which would keep the head for the WebSocket's life
        await send.SendAllAsync(socket, bytes, cancellationToken);
    }

    /// <summary>As SocketsHttpHandler does for every other request: the backend sees the gateway's span as its parent, not the client's.</summary>
    private static void PropagateTraceContext(HttpRequestMessage request)
    {
        if (System.Diagnostics.Activity.Current is not { } activity)
        {
            return;
        }

        var propagator = System.Diagnostics.DistributedContextPropagator.Current;
        foreach (var field in propagator.Fields)
        {
            request.Headers.Remove(field);
        }

        propagator.Inject(activity, request, static (carrier, name, value) => ((HttpRequestMessage)carrier!).Headers.TryAddWithoutValidation(name, value));
    }

    private static async Task<HttpResponseMessage> ReadResponseAsync(Socket socket, HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(1024);
        var length = 0;
        try
        {
            int headEnd;
            while ((headEnd = buffer.AsSpan(0, length).IndexOf("\r\n\r\n"u8)) < 0)
            {
                if (length == buffer.Length)
                {
                    if (length >= MaxResponseHeadBytes)
                    {
                        throw new HttpRequestException(HttpRequestError.ConfigurationLimitExceeded, $"The backend's response head exceeded {MaxResponseHeadBytes} bytes.");
                    }

                    var larger = ArrayPool<byte>.Shared.Rent(length * 2);
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }

                var read = await socket.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, cancellationToken);
                if (read == 0)
                {
                    throw new HttpRequestException(HttpRequestError.ResponseEnded, "The backend closed the connection before its response head ended.");
                }

                length += read;
            }

            var head = UpgradeResponseHead.Parse(buffer.AsSpan(0, headEnd + 2), request);
            var after = buffer.AsSpan(headEnd + 4, length - headEnd - 4).ToArray(); // what came in the same read: WebSocket frames, or the refusal's body
            if (head.Response.StatusCode == HttpStatusCode.SwitchingProtocols)
            {
                return head.WithContent(UpgradedContent.Of(new UpgradedSocketStream(socket, after)));
            }

            var body = await RefusalBody.ReadAsync(socket, after, head, MaxRefusalBodyBytes, cancellationToken);
            var refusal = head.WithContent(new ByteArrayContent(body));
            refusal.Content.Headers.ContentLength = body.Length; // read whole, so the client gets it with a length whatever its framing was
            refusal.Headers.TransferEncodingChunked = null;
            return refusal;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
