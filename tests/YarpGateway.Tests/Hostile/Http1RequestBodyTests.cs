using System.Buffers;
using System.IO.Pipelines;
using YarpGateway.RequestFiltering;

namespace YarpGateway.Tests.Hostile;

/// <summary>
/// The request body stream YARP reads over HTTP/1.x: every read leaves the reader advanced, a cancelled one included,
/// so that what is left of the body can still be read after the answer (the functional tests in
/// <c>EarlyResponseTests</c> show it against Kestrel's reader).
/// </summary>
public class Http1RequestBodyTests
{
    [Fact]
    public async Task AReadCancelledWhileItWaits_LeavesTheRestReadable()
    {
        var pipe = new Pipe();
        var body = new Http1RequestBody(pipe.Reader);
        using var cancel = new CancellationTokenSource();

        var waiting = body.ReadAsync(new byte[10], cancel.Token);
        Assert.False(waiting.IsCompleted);
        Assert.True(body.Reading);
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await waiting);
        Assert.False(body.Reading);

        await pipe.Writer.WriteAsync("rest"u8.ToArray());
        await pipe.Writer.CompleteAsync();
        var result = await pipe.Reader.ReadAsync(); // the drain reads the reader itself: it is not stuck "reading"
        Assert.Equal("rest"u8.ToArray(), result.Buffer.ToArray());
        Assert.True(result.IsCompleted);
    }

    [Fact]
    public async Task ACancellationThatCameAsAReadReturned_DoesNotCancelTheNextRead()
    {
        var pipe = new Pipe();
        var body = new Http1RequestBody(pipe.Reader);
        pipe.Reader.CancelPendingRead(); // as when the token fired after the read it was for had returned
        await pipe.Writer.WriteAsync("abc"u8.ToArray());

        var buffer = new byte[10];
        var read = await body.ReadAsync(buffer, CancellationToken.None);

        Assert.Equal("abc", System.Text.Encoding.ASCII.GetString(buffer, 0, read));
    }

    [Fact]
    public async Task AZeroByteRead_WaitsForBytes_AndTakesNone()
    {
        var pipe = new Pipe();
        var body = new Http1RequestBody(pipe.Reader);

        var waiting = body.ReadAsync(Memory<byte>.Empty, CancellationToken.None);
        Assert.False(waiting.IsCompleted);
        await pipe.Writer.WriteAsync("abcdef"u8.ToArray());
        Assert.Equal(0, await waiting);

        var buffer = new byte[4];
        Assert.Equal(4, await body.ReadAsync(buffer, CancellationToken.None)); // no more than asked for
        Assert.Equal("abcd"u8.ToArray(), buffer);
        Assert.Equal(2, await body.ReadAsync(buffer, CancellationToken.None));
        Assert.False(body.ReadToEnd);

        await pipe.Writer.CompleteAsync();
        Assert.Equal(0, await body.ReadAsync(buffer, CancellationToken.None));
        Assert.True(body.ReadToEnd);
        Assert.True(body.Started);
    }

    [Fact]
    public async Task TheLastBytesWithTheEnd_MarkTheBodyReadToItsEnd()
    {
        var pipe = new Pipe();
        var body = new Http1RequestBody(pipe.Reader);
        await pipe.Writer.WriteAsync("abc"u8.ToArray());
        await pipe.Writer.CompleteAsync();

        Assert.Equal(3, await body.ReadAsync(new byte[3], CancellationToken.None));

        Assert.True(body.ReadToEnd);
    }
}
