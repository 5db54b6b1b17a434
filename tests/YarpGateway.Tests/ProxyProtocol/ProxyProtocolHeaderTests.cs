using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using YarpGateway.ProxyProtocol;
using Result = YarpGateway.ProxyProtocol.ProxyProtocolHeader.Result;

namespace YarpGateway.Tests.ProxyProtocol;

/// <summary>The PROXY protocol header's parser: versions 1 and 2, partial input, and what is refused.</summary>
public class ProxyProtocolHeaderTests
{
    private static readonly byte[] Signature = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];
    private static readonly byte[] Request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray();

    internal static byte[] V2(byte command, byte family, byte[] body)
    {
        var header = new byte[16 + body.Length];
        Signature.CopyTo(header, 0);
        header[12] = command;
        header[13] = family;
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(14), (ushort)body.Length);
        body.CopyTo(header, 16);
        return header;
    }

    internal static byte[] V2Tcp4(byte[] source, ushort port, byte[]? tlvs = null)
    {
        var body = new byte[12 + (tlvs?.Length ?? 0)];
        source.CopyTo(body, 0);
        new byte[] { 10, 0, 0, 1 }.CopyTo(body, 4);
        BinaryPrimitives.WriteUInt16BigEndian(body.AsSpan(8), port);
        BinaryPrimitives.WriteUInt16BigEndian(body.AsSpan(10), 443);
        tlvs?.CopyTo(body, 12);
        return V2(0x21, 0x11, body);
    }

    private static (Result Result, ProxyProtocolHeader Header) Parse(byte[] bytes)
    {
        var result = ProxyProtocolHeader.TryParse(new ReadOnlySequence<byte>(bytes), out var header);
        return (result, header);
    }

    [Theory]
    [InlineData("PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n", "203.0.113.7:51234")]
    [InlineData("PROXY TCP6 2001:db8::7 2001:db8::1 51234 443\r\n", "[2001:db8::7]:51234")]
    [InlineData("PROXY TCP6 ::ffff:203.0.113.7 ::ffff:10.0.0.1 1 443\r\n", "203.0.113.7:1")]
    [InlineData("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n", "255.255.255.255:65535")]
    public void Version1_GivesTheSource_AndItsLength(string line, string source)
    {
        var (result, header) = Parse([.. Encoding.ASCII.GetBytes(line), .. Request]);

        Assert.Equal(Result.Complete, result);
        Assert.Equal(source, header.Source!.ToString());
        Assert.Equal(line.Length, header.Length);
    }

    [Theory]
    [InlineData("PROXY UNKNOWN\r\n")]
    [InlineData("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n")]
    public void Version1Unknown_KeepsThePeer(string line)
    {
        var (result, header) = Parse([.. Encoding.ASCII.GetBytes(line), .. Request]);

        Assert.Equal(Result.Complete, result);
        Assert.Null(header.Source);
        Assert.Equal(line.Length, header.Length);
    }

    [Theory]
    [InlineData("PROXY TCP4 203.0.113.7 10.0.0.1 51234\r\n")] // a port missing
    [InlineData("PROXY TCP4 203.0.113.7 10.0.0.1 51234 443 9\r\n")]
    [InlineData("PROXY TCP4 2001:db8::7 10.0.0.1 51234 443\r\n")] // the family and the address disagree
    [InlineData("PROXY TCP6 203.0.113.7 2001:db8::1 51234 443\r\n")]
    [InlineData("PROXY TCP4 1 10.0.0.1 51234 443\r\n")] // not four numbers, though .NET reads it
    [InlineData("PROXY TCP4 203.0.113.7 10.0.0.1 65536 443\r\n")]
    [InlineData("PROXY TCP4 203.0.113.7 10.0.0.1 0443 443\r\n")]
    [InlineData("PROXY TCP4 203.0.113.7 10.0.0.1 -1 443\r\n")]
    [InlineData("PROXY UDP4 203.0.113.7 10.0.0.1 51234 443\r\n")]
    [InlineData("PROXY TCP4  203.0.113.7 10.0.0.1 51234 443\r\n")]
    [InlineData("PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\n")] // no CR
    [InlineData("PROXY / HTTP/1.1\r\n")] // a request whose method is PROXY
    public void Version1Malformed_IsRefused(string line)
        => Assert.Equal(Result.Malformed, Parse([.. Encoding.ASCII.GetBytes(line), .. Request]).Result);

    [Fact]
    public void Version1WithoutItsEnd_WithinItsLongest_NeedsMore_ThenIsRefused()
    {
        Assert.Equal(Result.NeedMore, Parse(Encoding.ASCII.GetBytes("PROXY TCP4 203.0.113.7 10.0.0.1 512")).Result);
        Assert.Equal(Result.Malformed, Parse(Encoding.ASCII.GetBytes("PROXY UNKNOWN " + new string('x', 100))).Result);
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\n")]
    [InlineData("POST / HTTP/1.1\r\n")]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")] // HTTP/2 with prior knowledge
    [InlineData("\u0016\u0003\u0001")] // a TLS ClientHello
    public void AClientsOwnBytes_AreNoHeader(string start)
        => Assert.Equal(Result.Missing, Parse(Encoding.Latin1.GetBytes(start)).Result);

    [Fact]
    public void NoBytesYet_OrAPrefixOfEither_NeedsMore()
    {
        Assert.Equal(Result.NeedMore, Parse([]).Result);
        Assert.Equal(Result.NeedMore, Parse("PROX"u8.ToArray()).Result);
        Assert.Equal(Result.NeedMore, Parse(Signature[..7]).Result);
        Assert.Equal(Result.NeedMore, Parse(V2Tcp4([203, 0, 113, 7], 4444)[..20]).Result); // its addresses still to come
    }

    [Fact]
    public void Version2Tcp4_WithTlvs_GivesTheSource_AndSkipsTheTlvs()
    {
        var bytes = V2Tcp4([198, 51, 100, 9], 4444, [0x04, 0x00, 0x04, (byte)'a', (byte)'b', (byte)'c', (byte)'d']);

        var (result, header) = Parse([.. bytes, .. Request]);

        Assert.Equal(Result.Complete, result);
        Assert.Equal("198.51.100.9:4444", header.Source!.ToString());
        Assert.Equal(bytes.Length, header.Length);
    }

    [Fact]
    public void Version2Tcp6_GivesTheSource()
    {
        var body = new byte[36];
        System.Net.IPAddress.Parse("2001:db8::9").GetAddressBytes().CopyTo(body, 0);
        System.Net.IPAddress.Parse("2001:db8::1").GetAddressBytes().CopyTo(body, 16);
        BinaryPrimitives.WriteUInt16BigEndian(body.AsSpan(32), 5555);

        var (result, header) = Parse(V2(0x21, 0x21, body));

        Assert.Equal(Result.Complete, result);
        Assert.Equal("[2001:db8::9]:5555", header.Source!.ToString());
    }

    [Theory]
    [InlineData(0x20, 0x00, 0)] // LOCAL: the load balancer's health check
    [InlineData(0x20, 0x11, 12)] // LOCAL with addresses: they are ignored
    [InlineData(0x21, 0x00, 0)] // UNSPEC
    [InlineData(0x21, 0x12, 12)] // UDP over IPv4
    [InlineData(0x21, 0x31, 216)] // a UNIX socket
    public void Version2WithoutAUsableAddress_KeepsThePeer(byte command, byte family, int length)
    {
        var (result, header) = Parse(V2(command, family, new byte[length]));

        Assert.Equal(Result.Complete, result);
        Assert.Null(header.Source);
        Assert.Equal(16 + length, header.Length);
    }

    [Theory]
    [InlineData(0x11, 0x11, 12)] // version 1 in a version 2 signature
    [InlineData(0x22, 0x11, 12)] // a command that does not exist
    [InlineData(0x21, 0x41, 12)] // an address family that does not exist
    [InlineData(0x21, 0x13, 12)] // a transport that does not exist
    [InlineData(0x21, 0x11, 8)] // shorter than its addresses
    [InlineData(0x21, 0x21, 12)]
    [InlineData(0x21, 0x11, ProxyProtocolHeader.MaxLength - 15)] // longer than is taken
    public void Version2Malformed_IsRefused(byte command, byte family, int length)
        => Assert.Equal(Result.Malformed, Parse(V2(command, family, new byte[length])).Result);

    [Fact]
    public void AHeaderSplitAcrossSegments_IsRead()
    {
        var bytes = Encoding.ASCII.GetBytes("PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n");
        var first = new Segment(bytes[..9]);
        var last = first.Append(bytes[9..30]).Append([.. bytes[30..], .. Request]);

        var result = ProxyProtocolHeader.TryParse(new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length), out var header);

        Assert.Equal(Result.Complete, result);
        Assert.Equal("203.0.113.7:51234", header.Source!.ToString());
        Assert.Equal(bytes.Length, header.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(byte[] bytes) => Memory = bytes;

        public Segment Append(byte[] bytes)
        {
            var next = new Segment(bytes) { RunningIndex = RunningIndex + Memory.Length };
            Next = next;
            return next;
        }
    }
}
