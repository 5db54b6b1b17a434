using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using YarpGateway.RequestFiltering;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Hostile;

/// <summary>
/// <c>Content-Length</c> is <c>1*DIGIT</c> (RFC 9110 §8.6). Kestrel parses it before any middleware runs
/// and used to read <c>+5</c> as 5; the decoding it is given for that header makes its parser refuse
/// anything else. The HTTP/1.1 cases are in <see cref="Http1LeniencyTests"/>.
/// </summary>
public class ContentLengthTests
{
    [Theory]
    [InlineData("0", "0")]
    [InlineData("5", "5")]
    [InlineData("05", "05")]
    [InlineData("9223372036854775807", "9223372036854775807")]
    [InlineData("+5", "?")]
    [InlineData("-5", "?")]
    [InlineData("5 ", "?")]
    [InlineData("0x5", "?")]
    [InlineData("", "?")]
    [InlineData("00000000000000000005", "?")] // 20 digits: longer than any long
    [InlineData("\u0665", "?")] // a non-ASCII digit (its UTF-8 bytes)
    public void TheDecoding_KeepsPlainDigits_AndTurnsAnythingElseIntoWhatNoParseAccepts(string raw, string decoded)
    {
        var bytes = Encoding.UTF8.GetBytes(raw);
        Span<char> chars = stackalloc char[20]; // what Kestrel gives it
        var count = ContentLengthDigitsEncoding.Instance.GetChars(bytes, chars);

        Assert.Equal(decoded, chars[..count].ToString());
        Assert.Equal(count, ContentLengthDigitsEncoding.Instance.GetCharCount(bytes));
        Assert.Equal(decoded, ContentLengthDigitsEncoding.Instance.GetString(bytes));
    }

    [Fact]
    public void TheSelector_AnswersOnlyForContentLength_AndLeavesEveryOtherHeaderToTheOneBefore()
    {
        var options = new KestrelServerOptions { RequestHeaderEncodingSelector = name => name == "X-Latin" ? Encoding.Latin1 : null };
        new ContentLengthDigitsEncoding.KestrelSetup().Configure(options);

        Assert.Same(ContentLengthDigitsEncoding.Instance, options.RequestHeaderEncodingSelector("Content-Length"));
        Assert.Same(ContentLengthDigitsEncoding.Instance, options.RequestHeaderEncodingSelector("content-length"));
        Assert.Same(Encoding.Latin1, options.RequestHeaderEncodingSelector("X-Latin"));
        Assert.Null(options.RequestHeaderEncodingSelector("Content-Type"));
    }

    [Theory]
    [InlineData("5", true)]
    [InlineData("+5", false)]
    public async Task OverHttp2_OnlyAPlainContentLength_ReachesTheBackend(string contentLength, bool forwarded)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)));
        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        await socket.SendAsync((byte[])[
            .. Http2Frames.Preface, .. Http2Frames.EmptySettings(),
            .. Http2Frames.Request(1, "POST", "/", endStream: false, ("content-length", contentLength)),
            .. Http2Frames.Frame(Http2Frames.Data, Http2Frames.EndStream, 1, "hello"u8)], SocketFlags.None);

        // Stream 1 gets a response (HPACK static index 8 is ":status 200"), a reset, or the connection goes away.
        string outcome;
        while (true)
        {
            var (type, _, stream, payload) = await Http2Frames.ReadAsync(socket, bound.Token);
            if (type == Http2Frames.GoAway)
            {
                outcome = "goaway";
                break;
            }

            if (stream == 1 && type is Http2Frames.Headers or Http2Frames.RstStream)
            {
                outcome = type == Http2Frames.RstStream ? "reset" : payload[0] == 0x88 ? "200" : $"status byte 0x{payload[0]:x2}";
                break;
            }
        }

        if (forwarded)
        {
            Assert.Equal("200", outcome);
            Assert.Equal(["hello"], backend.Bodies);
        }
        else
        {
            Assert.NotEqual("200", outcome);
            Assert.Equal(0, backend.Requests);
        }
    }
}
