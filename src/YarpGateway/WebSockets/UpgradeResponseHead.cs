using System.Net;
using System.Text;

namespace YarpGateway.WebSockets;

/// <summary>
/// A backend's HTTP/1.1 response head to an upgrade request, parsed strictly (RFC 9112: status line,
/// then field lines; no line folding), as an <see cref="HttpResponseMessage"/> waiting for its content.
/// </summary>
internal sealed class UpgradeResponseHead
{
    private readonly List<(string Name, string Value)> _contentHeaders = [];

    private UpgradeResponseHead(HttpResponseMessage response) => Response = response;

    public HttpResponseMessage Response { get; }

    /// <summary>The Content-Length the backend gave, if any.</summary>
    public long? ContentLength { get; private set; }

    /// <summary>Parses the head, its final CRLF excluded; throws <see cref="HttpRequestException"/> for anything malformed.</summary>
    public static UpgradeResponseHead Parse(ReadOnlySpan<byte> head, HttpRequestMessage request)
    {
        var text = Encoding.Latin1.GetString(head);
        var lines = text.Split("\r\n");
        if (lines.Any(line => line.AsSpan().IndexOfAny('\r', '\n', '\0') >= 0))
        {
            throw Invalid("a bare CR, LF or NUL in its head"); // RFC 9112 §2.2: never passed on, it could split the client's response
        }

        var status = lines[0];
        if (status.Length < 12 || !status.StartsWith("HTTP/1.", StringComparison.Ordinal) || status[8] != ' '
            || !int.TryParse(status.AsSpan(9, 3), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var code)
            || code < 100 || (status.Length > 12 && status[12] != ' '))
        {
            throw Invalid($"a malformed status line '{Truncate(status)}'");
        }

        var response = new HttpResponseMessage((HttpStatusCode)code)
        {
            Version = HttpVersion.Version11,
            ReasonPhrase = status.Length > 13 ? status[13..] : null,
            RequestMessage = request,
        };
        var parsed = new UpgradeResponseHead(response);
        foreach (var line in lines.AsSpan(1))
        {
            if (line.Length == 0)
            {
                continue; // the split leaves one empty piece after the last CRLF
            }

            var colon = line.IndexOf(':');
            if (colon <= 0 || line[0] is ' ' or '\t' || line.AsSpan(0, colon).IndexOfAny(' ', '\t') >= 0)
            {
                throw Invalid($"a malformed header line '{Truncate(line)}'");
            }

            var name = line[..colon];
            var value = line[(colon + 1)..].Trim(' ', '\t');
            if (string.Equals(name, "Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                if (!long.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var contentLength)
                    || (parsed.ContentLength is { } earlier && earlier != contentLength))
                {
                    throw Invalid($"a bad Content-Length '{Truncate(value)}'");
                }

                parsed.ContentLength = contentLength;
            }

            if (!response.Headers.TryAddWithoutValidation(name, value))
            {
                parsed._contentHeaders.Add((name, value)); // Content-Type, Content-Length and the like
            }
        }

        return parsed;
    }

    /// <summary>Gives the response its content, with the content headers the backend sent.</summary>
    public HttpResponseMessage WithContent(HttpContent content)
    {
        foreach (var (name, _) in _contentHeaders)
        {
            content.Headers.Remove(name); // the backend's value counts, not one the content computed
        }

        foreach (var (name, value) in _contentHeaders)
        {
            content.Headers.TryAddWithoutValidation(name, value);
        }

        Response.Content = content;
        return Response;
    }

    private static HttpRequestException Invalid(string what)
        => new(HttpRequestError.InvalidResponse, $"The backend's answer to a WebSocket upgrade has {what}.");

    private static string Truncate(string text) => text.Length <= 80 ? text : text[..80] + "...";
}
