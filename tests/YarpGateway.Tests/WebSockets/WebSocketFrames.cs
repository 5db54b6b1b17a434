using System.Buffers.Binary;
using System.Text;

namespace YarpGateway.Tests.WebSockets;

/// <summary>Raw RFC 6455 frames for tests, built byte by byte (servers unmasked, clients masked).</summary>
internal static class WebSocketFrames
{
    public const byte Continuation = 0x0;
    public const byte Text = 0x1;
    public const byte Binary = 0x2;
    public const byte Close = 0x8;
    public const byte Ping = 0x9;
    public const byte Pong = 0xA;

    public static byte[] Frame(byte opcode, ReadOnlySpan<byte> payload, bool fin = true, bool masked = false, byte rsv = 0)
    {
        var lengthBytes = payload.Length < 126 ? 0 : payload.Length <= ushort.MaxValue ? 2 : 8;
        var header = 2 + lengthBytes + (masked ? 4 : 0);
        var frame = new byte[header + payload.Length];
        frame[0] = (byte)((fin ? 0x80 : 0) | (rsv << 4) | opcode);
        var maskBit = masked ? 0x80 : 0;
        switch (lengthBytes)
        {
            case 0:
                frame[1] = (byte)(maskBit | payload.Length);
                break;
            case 2:
                frame[1] = (byte)(maskBit | 126);
                BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(2), (ushort)payload.Length);
                break;
            default:
                frame[1] = (byte)(maskBit | 127);
                BinaryPrimitives.WriteUInt64BigEndian(frame.AsSpan(2), (ulong)payload.Length);
                break;
        }

        payload.CopyTo(frame.AsSpan(header));
        if (masked)
        {
            var key = frame.AsSpan(2 + lengthBytes, 4);
            Random.Shared.NextBytes(key);
            for (var i = 0; i < payload.Length; i++)
            {
                frame[header + i] ^= key[i % 4];
            }
        }

        return frame;
    }

    public static byte[] TextFrame(string text, bool fin = true, bool masked = false) => Frame(Text, Encoding.UTF8.GetBytes(text), fin, masked);

    public static byte[] CloseFrame(ushort code, bool masked)
    {
        var payload = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(payload, code);
        return Frame(Close, payload, fin: true, masked);
    }

    /// <summary>Reads one frame; null at the end of the stream. Unmasks masked frames.</summary>
    public static async Task<ReceivedFrame?> ReadAsync(Stream stream, CancellationToken cancellationToken)
    {
        var head = new byte[2];
        if (!await FillAsync(stream, head, cancellationToken))
        {
            return null;
        }

        var len7 = head[1] & 0x7F;
        var extra = new byte[(len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((head[1] & 0x80) != 0 ? 4 : 0)];
        if (!await FillAsync(stream, extra, cancellationToken))
        {
            throw new EndOfStreamException("The stream ended inside a frame header.");
        }

        long length = len7 switch
        {
            126 => BinaryPrimitives.ReadUInt16BigEndian(extra),
            127 => (long)BinaryPrimitives.ReadUInt64BigEndian(extra),
            _ => len7,
        };
        var payload = new byte[length];
        if (!await FillAsync(stream, payload, cancellationToken))
        {
            throw new EndOfStreamException("The stream ended inside a frame payload.");
        }

        if ((head[1] & 0x80) != 0)
        {
            var key = extra.AsSpan(extra.Length - 4);
            for (var i = 0; i < payload.Length; i++)
            {
                payload[i] ^= key[i % 4];
            }
        }

        return new ReceivedFrame((byte)(head[0] & 0x0F), (head[0] & 0x80) != 0, payload);
    }

    private static async Task<bool> FillAsync(Stream stream, byte[] buffer, CancellationToken cancellationToken)
    {
        var filled = 0;
        while (filled < buffer.Length)
        {
            var read = await stream.ReadAsync(buffer.AsMemory(filled), cancellationToken);
            if (read == 0)
            {
                return filled == 0 && buffer.Length > 0 ? false : filled == buffer.Length;
            }

            filled += read;
        }

        return true;
    }
}

internal sealed record ReceivedFrame(byte Opcode, bool Fin, byte[] Payload)
{
    public ushort CloseCode => Payload.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(Payload) : (ushort)0;

    public string Text => Encoding.UTF8.GetString(Opcode == WebSocketFrames.Close ? Payload.AsSpan(Math.Min(2, Payload.Length)) : Payload);
}
