using System.Buffers.Binary;
using System.Text;

namespace YarpGateway.WebSockets;

/// <summary>Close codes the gateway sends (RFC 6455 §7.4.1 and IANA's registry) and the unmasked close frame that carries them.</summary>
internal static class CloseFrame
{
    public const ushort GoingAway = 1001;
    public const ushort ProtocolError = 1002;
    public const ushort PolicyViolation = 1008;
    public const ushort TryAgainLater = 1013;

    /// <summary>"Bad Gateway" (IANA's WebSocket close code registry): the backend's connection failed.</summary>
    public const ushort BadGateway = 1014;

    /// <summary>A server-to-client close frame: FIN + opcode 8, unmasked, code and UTF-8 reason (cut to fit 125 bytes).</summary>
    public static byte[] Build(ushort code, string reason)
    {
        var reasonBytes = Encoding.UTF8.GetBytes(reason);
        var reasonLength = Math.Min(reasonBytes.Length, 123);
        while (reasonLength > 0 && reasonLength < reasonBytes.Length && (reasonBytes[reasonLength] & 0xC0) == 0x80)
        {
            reasonLength--; // never cut a UTF-8 sequence in two
        }

        var frame = new byte[4 + reasonLength];
        frame[0] = 0x88;
        frame[1] = (byte)(2 + reasonLength);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(2), code);
        reasonBytes.AsSpan(0, reasonLength).CopyTo(frame.AsSpan(4));
        return frame;
    }
}
