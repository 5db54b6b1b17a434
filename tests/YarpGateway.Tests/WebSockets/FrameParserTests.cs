using YarpGateway.WebSockets;

namespace YarpGateway.Tests.WebSockets;

public class FrameParserTests
{
    private static readonly FrameRules FromServer = new(Masked: false, AllowReservedBits: false);
    private static readonly FrameRules FromClient = new(Masked: true, AllowReservedBits: true);

    [Theory]
    [InlineData(0, 2)]
    [InlineData(125, 2)]
    [InlineData(126, 4)]
    [InlineData(65535, 4)]
    [InlineData(65536, 10)]
    public void HeaderLengths_SevenSixteenAndSixtyFourBitLengths(int payload, int headerLength)
    {
        var frame = WebSocketFrames.Frame(WebSocketFrames.Binary, new byte[payload]);
        var parser = new FrameParser();

        var taken = parser.ReadHeader(frame, FromServer, out var status, out var error);

        Assert.Equal(HeaderStatus.Complete, status);
        Assert.Null(error);
        Assert.Equal(headerLength, taken);
        Assert.Equal(new FrameHeader(Opcode.Binary, true, payload, headerLength), parser.Current);
        Assert.Equal(frame.AsSpan(0, headerLength).ToArray(), parser.HeaderBytes.ToArray());
    }

    [Fact]
    public void ByteByByte_ParsesTheSameFrames()
    {
        var stream = WebSocketFrames.TextFrame("one", fin: false)
            .Concat(WebSocketFrames.Frame(WebSocketFrames.Ping, "p"u8))
            .Concat(WebSocketFrames.Frame(WebSocketFrames.Continuation, new byte[300]))
            .ToArray();
        var parser = new FrameParser();
        var headers = new List<FrameHeader>();

        foreach (var b in stream)
        {
            if (!parser.InPayload)
            {
                parser.ReadHeader([b], FromServer, out var status, out _);
                Assert.NotEqual(HeaderStatus.Invalid, status);
                if (status == HeaderStatus.Complete)
                {
                    headers.Add(parser.Current);
                    if (parser.PayloadRemaining == 0)
                    {
                        parser.AdvancePayload(0);
                    }
                }

                continue;
            }

            parser.AdvancePayload(1);
        }

        Assert.Equal([Opcode.Text, Opcode.Ping, Opcode.Continuation], headers.Select(h => h.Opcode));
        Assert.True(headers[0].StartsMessage && !headers[0].EndsMessage);
        Assert.True(headers[1].IsControl && !headers[1].EndsMessage);
        Assert.True(headers[2].EndsMessage);
        Assert.True(parser.AtFrameBoundary);
    }

    public static TheoryData<byte[], string> Malformed => new()
    {
        { [0x83, 0x00], "unknown opcode" },
        { [0xC1, 0x00], "reserved bits" },
        { [0x81, 0x80, 1, 2, 3, 4], "masked frame from a server" },
        { [0x09, 0x00], "control frame" }, // ping without FIN
        { WebSocketFrames.Frame(WebSocketFrames.Ping, new byte[126]), "control frame" },
        { [0x80, 0x00], "continuation frame without a message" },
        { [0x01, 0x00, 0x81, 0x00], "new data message inside a fragmented message" },
        { [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0], "2^63" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void MalformedFramesFromAServer_AreInvalid(byte[] bytes, string why)
    {
        var parser = new FrameParser();
        var status = HeaderStatus.NeedMore;
        string? error = null;
        var data = bytes.AsSpan();
        while (!data.IsEmpty && status != HeaderStatus.Invalid)
        {
            data = data[parser.ReadHeader(data, FromServer, out status, out error)..];
            if (status == HeaderStatus.Complete)
            {
                parser.AdvancePayload(parser.PayloadRemaining);
            }
        }

        Assert.Equal(HeaderStatus.Invalid, status);
        Assert.Contains(why, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Observe_CountsWholeMessagesAndSeesTheClose_InAnyChunking()
    {
        var stream = WebSocketFrames.TextFrame("a", masked: true)
            .Concat(WebSocketFrames.Frame(WebSocketFrames.Binary, new byte[1000], fin: false, masked: true))
            .Concat(WebSocketFrames.Frame(WebSocketFrames.Pong, [], masked: true))
            .Concat(WebSocketFrames.Frame(WebSocketFrames.Continuation, new byte[70000], fin: true, masked: true))
            .Concat(WebSocketFrames.CloseFrame(1000, masked: true))
            .ToArray();

        foreach (var chunk in new[] { 1, 7, 4096, stream.Length })
        {
            var parser = new FrameParser();
            var messages = 0;
            var close = false;
            foreach (var part in stream.Chunk(chunk))
            {
                Assert.True(parser.Observe(part, FromClient, out var m, out var c));
                messages += m;
                close |= c;
            }

            Assert.Equal(2, messages);
            Assert.True(close);
        }
    }

    [Fact]
    public void Observe_StopsAtAnUnmaskedClientFrame()
    {
        var parser = new FrameParser();
        Assert.False(parser.Observe(WebSocketFrames.TextFrame("x", masked: false), FromClient, out _, out _));
    }

    [Fact]
    public void CloseFrame_IsUnmasked_CarriesCodeAndReason_CutWithoutSplittingUtf8()
    {
        var frame = CloseFrame.Build(CloseFrame.GoingAway, "bye");
        Assert.Equal(new byte[] { 0x88, 5, 0x03, 0xE9, (byte)'b', (byte)'y', (byte)'e' }, frame);

        var longReason = new string('é', 100); // 200 bytes in UTF-8
        var cut = CloseFrame.Build(CloseFrame.PolicyViolation, longReason);
        Assert.True(cut[1] <= 125);
        Assert.Equal(cut.Length - 2, cut[1]);
        Assert.Equal(new string('é', 61), System.Text.Encoding.UTF8.GetString(cut.AsSpan(4)));
    }
}
