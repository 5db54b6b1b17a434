using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace YarpGateway.ProxyProtocol;

/// <summary>
/// The PROXY protocol header a TCP load balancer sends before the client's bytes (HAProxy's
/// specification, versions 1 and 2): who the client is, since the connection itself comes from the load
/// balancer. Parsed from the start of a connection's input; <see cref="Source"/> is null when the header
/// says the connection is the load balancer's own (v1 <c>UNKNOWN</c>, v2 <c>LOCAL</c>, or an address family
/// other than TCP over IPv4 or IPv6), whose peer address then stands.
/// </summary>
internal readonly record struct ProxyProtocolHeader(IPEndPoint? Source, int Length)
{
    /// <summary>The longest header taken: a v1 line is at most 107 bytes; a v2 header's TLVs (cloud load balancers add a few dozen bytes) may take it to this.</summary>
    internal const int MaxLength = 16 + 4096;

    private const int V1MaxLength = 107;

    private static ReadOnlySpan<byte> V1Prefix => "PROXY "u8;

    private static ReadOnlySpan<byte> V2Signature => [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    /// <summary>What <see cref="TryParse"/> found.</summary>
    internal enum Result
    {
        /// <summary>A whole header; its bytes are <see cref="Length"/> long.</summary>
        Complete,

        /// <summary>A header's start, or too few bytes to tell: read more.</summary>
        NeedMore,

        /// <summary>The connection does not start with a PROXY protocol header (a client that came past the load balancer).</summary>
        Missing,

        /// <summary>A header that breaks the specification, or is longer than <see cref="MaxLength"/>.</summary>
        Malformed,
    }

    /// <summary>Reads a header from the start of <paramref name="input"/>.</summary>
    internal static Result TryParse(ReadOnlySequence<byte> input, out ProxyProtocolHeader header)
    {
        header = default;
        Span<byte> start = stackalloc byte[16];
        var available = (int)Math.Min(input.Length, start.Length);
        input.Slice(0, available).CopyTo(start);
        start = start[..available];
        if (available == 0)
        {
            return Result.NeedMore;
        }

        if (start[0] == V1Prefix[0])
        {
            var known = Math.Min(available, V1Prefix.Length);
            return !start[..known].SequenceEqual(V1Prefix[..known]) ? Result.Missing
                : available < V1Prefix.Length ? Result.NeedMore
                : ParseV1(input, out header);
        }

        if (start[0] == V2Signature[0])
        {
            var known = Math.Min(available, V2Signature.Length);
            return !start[..known].SequenceEqual(V2Signature[..known]) ? Result.Missing
                : available < 16 ? Result.NeedMore
                : ParseV2(input, start, out header);
        }

        return Result.Missing;
    }

    // "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n", "PROXY TCP6 ...", or "PROXY UNKNOWN[ anything]\r\n".
    private static Result ParseV1(ReadOnlySequence<byte> input, out ProxyProtocolHeader header)
    {
        header = default;
        var reader = new SequenceReader<byte>(input);
        if (!reader.TryReadTo(out ReadOnlySequence<byte> lineBytes, (byte)'\n'))
        {
            return input.Length >= V1MaxLength ? Result.Malformed : Result.NeedMore;
        }

        var length = (int)lineBytes.Length + 1;
        if (length > V1MaxLength || lineBytes.Length < 1 || lineBytes.Slice(lineBytes.Length - 1).FirstSpan[0] != (byte)'\r')
        {
            return Result.Malformed;
        }

        Span<byte> line = stackalloc byte[V1MaxLength];
        lineBytes.Slice(0, lineBytes.Length - 1).CopyTo(line);
        line = line[..(length - 2)];
        foreach (var b in line)
        {
            if (b is < 0x20 or > 0x7E)
            {
                return Result.Malformed;
            }
        }

        var text = Encoding.ASCII.GetString(line[V1Prefix.Length..]);
        if (text == "UNKNOWN" || text.StartsWith("UNKNOWN ", StringComparison.Ordinal))
        {
            header = new ProxyProtocolHeader(null, length);
            return Result.Complete;
        }

        var parts = text.Split(' ');
        if (parts.Length != 5 || parts[0] is not ("TCP4" or "TCP6")
            || !IPAddress.TryParse(parts[1], out var source) || !IPAddress.TryParse(parts[2], out var destination)
            || !TryParsePort(parts[3], out var sourcePort) || !TryParsePort(parts[4], out _))
        {
            return Result.Malformed;
        }

        var family = parts[0] == "TCP4" ? System.Net.Sockets.AddressFamily.InterNetwork : System.Net.Sockets.AddressFamily.InterNetworkV6;
        if (source.AddressFamily != family || destination.AddressFamily != family || (family == System.Net.Sockets.AddressFamily.InterNetwork && !IsDottedQuad(parts[1])))
        {
            return Result.Malformed;
        }

        header = new ProxyProtocolHeader(new IPEndPoint(Normalize(source), sourcePort), length);
        return Result.Complete;
    }

    // .NET reads "1" or "0x7f.1" as an IPv4 address too; the specification's is four decimal numbers.
    private static bool IsDottedQuad(string text)
    {
        var parts = text.Split('.');
        return parts.Length == 4 && parts.All(static p => p.Length is > 0 and <= 3 && p.All(char.IsAsciiDigit));
    }

    private static bool TryParsePort(string text, out int port)
    {
        port = 0;
        return text.Length is > 0 and <= 5 && text.All(char.IsAsciiDigit) && (text.Length == 1 || text[0] != '0')
            && int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out port) && port <= 65535;
    }

    // The signature, version and command (0x20 LOCAL, 0x21 PROXY), family and transport, the length of what follows.
    private static Result ParseV2(ReadOnlySequence<byte> input, ReadOnlySpan<byte> start, out ProxyProtocolHeader header)
    {
        header = default;
        var versionCommand = start[12];
        if (versionCommand >> 4 != 2 || (versionCommand & 0x0F) > 1)
        {
            return Result.Malformed;
        }

        var length = 16 + BinaryPrimitives.ReadUInt16BigEndian(start[14..]);
        if (length > MaxLength)
        {
            return Result.Malformed;
        }

        if (input.Length < length)
        {
            return Result.NeedMore;
        }

        var local = (versionCommand & 0x0F) == 0;
        var familyTransport = start[13];
        var addressBytes = (familyTransport >> 4) switch { 1 => 4, 2 => 16, _ => 0 };
        if (familyTransport >> 4 > 3 || (familyTransport & 0x0F) > 2)
        {
            return Result.Malformed;
        }

        if (local || addressBytes == 0 || (familyTransport & 0x0F) != 1)
        {
            // The load balancer's own connection (a health check), or an address the gateway cannot use: the peer stands.
            header = new ProxyProtocolHeader(null, length);
            return Result.Complete;
        }

        if (length - 16 < 2 * addressBytes + 4)
        {
            return Result.Malformed;
        }

        Span<byte> addresses = stackalloc byte[36];
        input.Slice(16, 2 * addressBytes + 4).CopyTo(addresses);
        var source = new IPAddress(addresses[..addressBytes]);
        var sourcePort = BinaryPrimitives.ReadUInt16BigEndian(addresses[(2 * addressBytes)..]);
        header = new ProxyProtocolHeader(new IPEndPoint(Normalize(source), sourcePort), length);
        return Result.Complete;
    }

    // The gateway sees, logs and forwards IPv4 clients as IPv4, not as ::ffff:a.b.c.d.
    private static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
