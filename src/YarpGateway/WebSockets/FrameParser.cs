using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace YarpGateway.WebSockets;

/// <summary>
/// RFC 6455 §5.2 framing, parsed incrementally as bytes stream through: the header of each frame is
/// collected (at most 14 bytes, kept here so it can be forwarded whole) and checked; payloads are
/// only counted down, never copied. One parser per direction of one connection, kept for its life: laid out by the
/// runtime (48 bytes, not 64 in declaration order), as is <see cref="FrameHeader"/> (16, not 24).
/// </summary>
[StructLayout(LayoutKind.Auto)]
internal struct FrameParser
{
    public const int MaxHeaderLength = 14;

    private HeaderBuffer _header;
    private int _headerCount;
    private int _headerLength;
    private long _payloadRemaining;
    private bool _inPayload;
    private bool _inMessage;

    /// <summary>The frame whose header is complete (valid while its payload streams).</summary>
    public FrameHeader Current { get; private set; }

    /// <summary>True between a complete header and the end of its payload.</summary>
    public readonly bool InPayload => _inPayload;

    /// <summary>True when no part of a frame has been seen since the last frame ended.</summary>
    public readonly bool AtFrameBoundary => !_inPayload && _headerCount == 0;

    public readonly long PayloadRemaining => _payloadRemaining;

    /// <summary>The complete header's bytes, as received.</summary>
    [UnscopedRef]
    public ReadOnlySpan<byte> HeaderBytes => ((ReadOnlySpan<byte>)_header)[.._headerLength];

    /// <summary>
    /// Takes header bytes from <paramref name="data"/>; returns how many it took. <paramref name="status"/>
    /// says whether the header is complete (then <see cref="Current"/> is set and the payload begins),
    /// needs more bytes, or breaks the rules (then <paramref name="error"/> says how).
    /// </summary>
    public int ReadHeader(ReadOnlySpan<byte> data, FrameRules rules, out HeaderStatus status, out string? error)
    {
        error = null;
        var taken = 0;
        Span<byte> header = _header;
        while (true)
        {
            var needed = _headerCount < 2 ? 2 : _headerLength;
            if (_headerCount < needed)
            {
                var n = Math.Min(needed - _headerCount, data.Length - taken);
                data.Slice(taken, n).CopyTo(header[_headerCount..]);
                _headerCount += n;
                taken += n;
                if (_headerCount < needed)
                {
                    status = HeaderStatus.NeedMore;
                    return taken;
                }
            }

            if (_headerCount == 2 && _headerLength == 0)
            {
                var len7 = header[1] & 0x7F;
                _headerLength = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((header[1] & 0x80) != 0 ? 4 : 0);
                if (_headerLength > 2)
                {
                    continue;
                }
            }

            break;
        }

        status = Complete(rules, out error) ? HeaderStatus.Complete : HeaderStatus.Invalid;
        return taken;
    }

    /// <summary>Counts <paramref name="count"/> payload bytes of the current frame as passed; true when the frame has ended.</summary>
    public bool AdvancePayload(long count)
    {
        _payloadRemaining -= count;
        if (_payloadRemaining > 0)
        {
            return false;
        }

        EndFrame();
        return true;
    }

    /// <summary>
    /// Follows a stream without acting on it (the client-to-backend direction): counts whole data
    /// messages and close frames. Returns false, and stops being useful, at the first frame that breaks the rules.
    /// </summary>
    public bool Observe(ReadOnlySpan<byte> data, FrameRules rules, out int messages, out bool close)
    {
        messages = 0;
        close = false;
        while (!data.IsEmpty)
        {
            if (!_inPayload)
            {
                data = data[ReadHeader(data, rules, out var status, out _)..];
                if (status == HeaderStatus.Invalid)
                {
                    return false;
                }

                if (status == HeaderStatus.NeedMore)
                {
                    return true;
                }

                close |= Current.Opcode == Opcode.Close;
                if (Current.EndsMessage)
                {
                    messages++;
                }

                if (_payloadRemaining == 0)
                {
                    EndFrame();
                }

                continue;
            }

            var n = (int)Math.Min(_payloadRemaining, data.Length);
            AdvancePayload(n);
            data = data[n..];
        }

        return true;
    }

    private bool Complete(FrameRules rules, out string? error)
    {
        ReadOnlySpan<byte> header = _header;
        var fin = (header[0] & 0x80) != 0;
        var rsv = (byte)((header[0] >> 4) & 0x7);
        var opcode = (Opcode)(header[0] & 0x0F);
        var masked = (header[1] & 0x80) != 0;
        var len7 = header[1] & 0x7F;
        long length = len7 switch
        {
            126 => BinaryPrimitives.ReadUInt16BigEndian(header[2..]),
            127 => (long)BinaryPrimitives.ReadUInt64BigEndian(header[2..]),
            _ => len7,
        };

        error = null;
        if (opcode is not (Opcode.Continuation or Opcode.Text or Opcode.Binary or Opcode.Close or Opcode.Ping or Opcode.Pong))
        {
            error = $"unknown opcode 0x{(int)opcode:x}";
        }
        else if (rsv != 0 && !rules.AllowReservedBits)
        {
            error = "reserved bits set without a negotiated extension";
        }
        else if (rules.Masked is { } expected && masked != expected)
        {
            error = expected ? "unmasked frame from a client" : "masked frame from a server";
        }
        else if (length < 0)
        {
            error = "payload length over 2^63";
        }
        else if (opcode >= Opcode.Close && (!fin || length > 125))
        {
            error = "fragmented or over-long control frame";
        }
        else if (opcode == Opcode.Continuation && !_inMessage)
        {
            error = "continuation frame without a message in progress";
        }
        else if (opcode is Opcode.Text or Opcode.Binary && _inMessage)
        {
            error = "new data message inside a fragmented message";
        }

        if (error is not null)
        {
            return false;
        }

        if (opcode < Opcode.Close)
        {
            _inMessage = !fin;
        }

        Current = new FrameHeader(opcode, fin, length, _headerLength);
        _payloadRemaining = length;
        _inPayload = true;
        return true;
    }

    private void EndFrame()
    {
        _inPayload = false;
        _headerCount = 0;
        _headerLength = 0;
        _payloadRemaining = 0;
    }

    [InlineArray(MaxHeaderLength)]
    private struct HeaderBuffer
    {
        private byte _element0;
    }
}

/// <summary>What a direction's frames must look like.</summary>
/// <param name="Masked">true: every frame masked (from a client); false: none (from a server); null: not checked.</param>
/// <param name="AllowReservedBits">Whether RSV1-3 may be set (an extension such as permessage-deflate was negotiated).</param>
internal readonly record struct FrameRules(bool? Masked, bool AllowReservedBits);

internal enum HeaderStatus
{
    NeedMore,
    Complete,
    Invalid,
}

internal enum Opcode : byte
{
    Continuation = 0x0,
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA,
}

/// <summary>A parsed frame header.</summary>
[StructLayout(LayoutKind.Auto)]
internal readonly record struct FrameHeader(Opcode Opcode, bool Fin, long PayloadLength, int HeaderLength)
{
    public bool IsControl => Opcode >= Opcode.Close;

    /// <summary>The first frame of a data message (text or binary).</summary>
    public bool StartsMessage => Opcode is Opcode.Text or Opcode.Binary;

    /// <summary>The last frame of a data message.</summary>
    public bool EndsMessage => Fin && !IsControl;

    public long TotalLength => HeaderLength + PayloadLength;
}
