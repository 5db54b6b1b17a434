using System.Buffers.Binary;
using System.Net.Sockets;

namespace YarpGateway.Tests.Hostile;

/// <summary>Raw HTTP/2 frames for hostile clients, built byte by byte (RFC 9113), with the least HPACK a GET needs.</summary>
internal static class Http2Frames
{
    public static ReadOnlySpan<byte> Preface => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    public const byte Data = 0x0;
    public const byte Headers = 0x1;
    public const byte RstStream = 0x3;
    public const byte Settings = 0x4;
    public const byte GoAway = 0x7;
    public const byte WindowUpdate = 0x8;

    public const byte EndStream = 0x1;
    public const byte EndHeaders = 0x4;

    public static byte[] Frame(byte type, byte flags, int streamId, ReadOnlySpan<byte> payload)
    {
        var frame = new byte[9 + payload.Length];
        frame[0] = (byte)(payload.Length >> 16);
        frame[1] = (byte)(payload.Length >> 8);
        frame[2] = (byte)payload.Length;
        frame[3] = type;
        frame[4] = flags;
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(5), streamId & int.MaxValue);
        payload.CopyTo(frame.AsSpan(9));
        return frame;
    }

    public static byte[] EmptySettings() => Frame(Settings, 0, 0, []);

    /// <summary>HEADERS for <c>method path</c> with <c>:authority a</c>; HPACK without indexing or Huffman; extra headers as literal name/value pairs.</summary>
    public static byte[] Request(int streamId, string method = "GET", string path = "/", bool endStream = true, params (string Name, string Value)[] extra)
        => Request(streamId, https: false, method, path, endStream, extra);

    /// <summary>A request's HEADERS frame; <paramref name="https"/> for a connection over TLS (:scheme must match the transport).</summary>
    public static byte[] Request(int streamId, bool https, string method = "GET", string path = "/", bool endStream = true, params (string Name, string Value)[] extra)
    {
        var block = new List<byte>();
        void Literal(string name, string value)
        {
            block.Add(0x00); // literal without indexing, new name
            block.Add((byte)name.Length);
            block.AddRange(System.Text.Encoding.ASCII.GetBytes(name));
            block.Add((byte)value.Length);
            block.AddRange(System.Text.Encoding.ASCII.GetBytes(value));
        }

        Literal(":method", method);
        block.Add(https ? (byte)0x87 : (byte)0x86); // :scheme https or http (static index 7 or 6)
        Literal(":path", path);
        Literal(":authority", "a");
        foreach (var (name, value) in extra)
        {
            Literal(name, value);
        }

        return Frame(Headers, (byte)(EndHeaders | (endStream ? EndStream : 0)), streamId, block.ToArray());
    }

    public static byte[] Reset(int streamId, uint errorCode = 0x8 /* CANCEL */)
    {
        var payload = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(payload, errorCode);
        return Frame(RstStream, 0, streamId, payload);
    }

    /// <summary>WINDOW_UPDATE for a stream (0: the connection); an increment of 0 is a protocol error the server must answer.</summary>
    public static byte[] WindowIncrement(int streamId, uint increment)
    {
        var payload = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(payload, increment);
        return Frame(WindowUpdate, 0, streamId, payload);
    }

    /// <summary>The next frame the server sends: type, flags, stream and payload.</summary>
    public static Task<(byte Type, byte Flags, int StreamId, byte[] Payload)> ReadAsync(Socket socket, CancellationToken cancellationToken)
        => ReadAsync((buffer, token) => socket.ReceiveAsync(buffer, SocketFlags.None, token), cancellationToken);

    /// <summary>The next frame the server sends on a stream (TLS, for instance).</summary>
    public static Task<(byte Type, byte Flags, int StreamId, byte[] Payload)> ReadAsync(Stream stream, CancellationToken cancellationToken)
        => ReadAsync(stream.ReadAsync, cancellationToken);

    private static async Task<(byte Type, byte Flags, int StreamId, byte[] Payload)> ReadAsync(Func<Memory<byte>, CancellationToken, ValueTask<int>> receive, CancellationToken cancellationToken)
    {
        var head = new byte[9];
        await ReceiveExactlyAsync(receive, head, cancellationToken);
        var length = (head[0] << 16) | (head[1] << 8) | head[2];
        var payload = new byte[length];
        await ReceiveExactlyAsync(receive, payload, cancellationToken);
        return (head[3], head[4], BinaryPrimitives.ReadInt32BigEndian(head.AsSpan(5)) & int.MaxValue, payload);
    }

    private static async Task ReceiveExactlyAsync(Func<Memory<byte>, CancellationToken, ValueTask<int>> receive, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (!buffer.IsEmpty)
        {
            var read = await receive(buffer, cancellationToken);
            if (read == 0)
            {
                throw new EndOfStreamException("the server closed the connection");
            }

            buffer = buffer[read..];
        }
    }
}
