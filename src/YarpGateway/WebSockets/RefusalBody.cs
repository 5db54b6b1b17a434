using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace YarpGateway.WebSockets;

/// <summary>
/// Reads the body of a backend's refusal of a WebSocket upgrade (any answer but 101) whole, framed as
/// RFC 9112 §6.3 says (chunked, Content-Length, or up to the connection's end), so that the client
/// gets the backend's status and body. Bounded: a refusal is a short error page.
/// </summary>
internal static class RefusalBody
{
    public static async Task<byte[]> ReadAsync(Socket socket, byte[] early, UpgradeResponseHead head, int max, CancellationToken cancellationToken)
    {
        var status = (int)head.Response.StatusCode;
        if (status is < 200 or 204 or 304)
        {
            return [];
        }

        var raw = new ArrayBufferWriter<byte>(Math.Max(early.Length, 256));
        raw.Write(early);
        var chunked = head.Response.Headers.TransferEncodingChunked == true;
        if (!chunked && head.ContentLength is { } length)
        {
            if (length > max)
            {
                throw TooLarge(max);
            }

            while (raw.WrittenCount < length)
            {
                if (await ReceiveAsync(socket, raw, cancellationToken) == 0)
                {
                    throw new HttpRequestException(HttpRequestError.ResponseEnded, "The backend closed the connection before the body of its refusal ended.");
                }
            }

            return raw.WrittenSpan[..(int)length].ToArray();
        }

        while (true)
        {
            if (chunked && TryDecodeChunked(raw.WrittenSpan, out var body))
            {
                return body;
            }

            if (raw.WrittenCount > max + 4096)
            {
                throw TooLarge(max);
            }

            if (await ReceiveAsync(socket, raw, cancellationToken) == 0)
            {
                return chunked
                    ? throw new HttpRequestException(HttpRequestError.ResponseEnded, "The backend closed the connection before the chunked body of its refusal ended.")
                    : raw.WrittenSpan.ToArray(); // no framing: the body ends with the connection
            }
        }
    }

    /// <summary>Decodes a whole chunked body; false while it is incomplete. Throws on a malformed one.</summary>
    internal static bool TryDecodeChunked(ReadOnlySpan<byte> raw, out byte[] body)
    {
        var output = new ArrayBufferWriter<byte>();
        body = [];
        while (true)
        {
            var lineEnd = raw.IndexOf("\r\n"u8);
            if (lineEnd < 0)
            {
                return false;
            }

            var sizeText = Encoding.Latin1.GetString(raw[..lineEnd]);
            var semicolon = sizeText.IndexOf(';');
            if (semicolon >= 0)
            {
                sizeText = sizeText[..semicolon];
            }

            if (!int.TryParse(sizeText.Trim(' ', '\t'), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var size) || size < 0)
            {
                throw new HttpRequestException(HttpRequestError.InvalidResponse, "The chunked body of the backend's refusal has a malformed chunk size.");
            }

            raw = raw[(lineEnd + 2)..];
            if (size == 0)
            {
                // Trailers, if any, then the empty line.
                var end = raw.IndexOf("\r\n"u8);
                while (end > 0)
                {
                    raw = raw[(end + 2)..];
                    end = raw.IndexOf("\r\n"u8);
                }

                if (end < 0)
                {
                    return false;
                }

                body = output.WrittenSpan.ToArray();
                return true;
            }

            if (raw.Length < size + 2)
            {
                return false;
            }

            if (raw[size] != '\r' || raw[size + 1] != '\n')
            {
                throw new HttpRequestException(HttpRequestError.InvalidResponse, "A chunk of the backend's refusal does not end with CRLF.");
            }

            output.Write(raw[..size]);
            raw = raw[(size + 2)..];
        }
    }

    private static async ValueTask<int> ReceiveAsync(Socket socket, ArrayBufferWriter<byte> raw, CancellationToken cancellationToken)
    {
        var read = await socket.ReceiveAsync(raw.GetMemory(4096), SocketFlags.None, cancellationToken);
        raw.Advance(read);
        return read;
    }

    private static HttpRequestException TooLarge(int max)
        => new(HttpRequestError.ConfigurationLimitExceeded, $"The body of the backend's refusal of a WebSocket upgrade is over {max} bytes.");
}
