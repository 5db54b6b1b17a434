using System.Globalization;
using System.Text;

namespace YarpGateway.RequestFiltering;

/// <summary>
/// A backend path that a route's transforms computed from the decoded path (<c>PathRemovePrefix</c>, <c>PathPrefix</c>,
/// <c>PathPattern</c>), written with the client's own escapes in the part it kept of the client's path. Without it,
/// <c>/api/a%3Bv2.pdf</c> through <c>PathRemovePrefix /api</c> reached the backend as <c>/a;v2.pdf</c> (a path parameter to
/// Tomcat and Jetty), <c>%2B</c> as <c>+</c>, <c>%40</c> as <c>@</c>: YARP escapes a decoded path in its own way, which
/// leaves reserved characters decoded. nginx's <c>proxy_pass</c> with a URI keeps them escaped too.
/// <para>
/// The decoded path Kestrel gave (as sent: every escape decoded but <c>%2F</c>, and bytes that are not UTF-8 left as they
/// were) is walked beside the raw one, so that each decoded character has the raw text it came from. The longest tail of
/// whole segments that the backend's path shares with the decoded one is written as that raw text; what comes before it
/// (a <c>PathPrefix</c>, a <c>PathPattern</c>'s literal part) is escaped as YARP escapes it.
/// </para>
/// </summary>
internal static class EscapesAsSent
{
    /// <summary>
    /// <paramref name="path"/> (decoded) written with the escapes of <paramref name="rawSent"/> in the tail it shares with
    /// <paramref name="sent"/> (the decoded form of <paramref name="rawSent"/>); <see langword="null"/> when the two sent
    /// forms do not line up (the caller keeps YARP's escaping).
    /// </summary>
    public static string? Restore(string path, string sent, ReadOnlySpan<char> rawSent)
    {
        var shared = SharedTail(path, sent);
        if (shared == 0)
        {
            return null;
        }

        var rawStart = RawIndexOf(sent, rawSent, sent.Length - shared);
        if (rawStart < 0)
        {
            return null;
        }

        var head = new PathString(path[..^shared]).ToUriComponent();
        return string.Concat(head, rawSent[rawStart..]);
    }

    /// <summary>How many characters at the end of <paramref name="path"/> are <paramref name="sent"/>'s, in whole segments (from a <c>/</c>).</summary>
    internal static int SharedTail(string path, string sent)
    {
        var shared = 0;
        while (shared < path.Length && shared < sent.Length && path[^(shared + 1)] == sent[^(shared + 1)])
        {
            shared++;
        }

        while (shared > 0 && path[^shared] != '/')
        {
            shared--;
        }

        return shared;
    }

    /// <summary>
    /// Where in <paramref name="rawSent"/> the text of <paramref name="sent"/>'s character at <paramref name="index"/>
    /// starts; -1 when the two do not line up from start to end, or the index is inside a surrogate pair.
    /// </summary>
    internal static int RawIndexOf(string sent, ReadOnlySpan<char> rawSent, int index)
    {
        Span<byte> expected = stackalloc byte[4];
        var found = -1;
        var raw = 0;
        var i = 0;
        while (i < sent.Length)
        {
            if (i == index)
            {
                found = raw;
            }

            if (raw >= rawSent.Length)
            {
                return -1;
            }

            var c = sent[i];
            if (rawSent[raw] == c && (c != '%' || !rawSent[raw..].StartsWith("%25", StringComparison.Ordinal)))
            {
                raw++;
                i++;
                continue;
            }

            // An escape Kestrel decoded: the UTF-8 bytes of one character, or of a surrogate pair.
            var length = char.IsHighSurrogate(c) && i + 1 < sent.Length ? 2 : 1;
            var bytes = Encoding.UTF8.GetBytes(sent.AsSpan(i, length), expected);
            if (!Escapes(rawSent[raw..], expected[..bytes]))
            {
                return -1;
            }

            raw += 3 * bytes;
            i += length;
        }

        return raw == rawSent.Length ? found : -1;
    }

    /// <summary>Whether <paramref name="raw"/> starts with <paramref name="bytes"/>, each as a <c>%XX</c> escape.</summary>
    private static bool Escapes(ReadOnlySpan<char> raw, ReadOnlySpan<byte> bytes)
    {
        if (raw.Length < 3 * bytes.Length)
        {
            return false;
        }

        for (var b = 0; b < bytes.Length; b++)
        {
            var escape = raw.Slice(3 * b, 3);
            if (escape[0] != '%' || !byte.TryParse(escape[1..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value) || value != bytes[b])
            {
                return false;
            }
        }

        return true;
    }
}
