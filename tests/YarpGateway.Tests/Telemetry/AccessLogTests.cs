using System.Net;
using System.Text.Json.Nodes;
using YarpGateway.Telemetry;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Telemetry;

public class AccessLogTests
{
    /// <summary>Standard output as the access log writer sees it: each write kept apart, readable while it writes.</summary>
    internal sealed class CapturedOutput : Stream
    {
        private readonly List<byte[]> _writes = [];

        public byte[][] Writes
        {
            get
            {
                lock (_writes)
                {
                    return [.. _writes];
                }
            }
        }

        public string[] Lines => [.. Writes.SelectMany(w => System.Text.Encoding.UTF8.GetString(w).Split('\n', StringSplitOptions.RemoveEmptyEntries))];

        public override void Write(byte[] buffer, int offset, int count)
        {
            lock (_writes)
            {
                _writes.Add(buffer.AsSpan(offset, count).ToArray());
            }
        }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }

    private static AccessLogWriter Writer(Stream output, CapturingLoggerProvider? logs = null)
    {
        var factory = LoggerFactory.Create(builder => builder.AddProvider(logs ?? new CapturingLoggerProvider()));
        return new AccessLogWriter(output, TimeProvider.System, factory.CreateLogger<AccessLogWriter>());
    }

    [Fact]
    public async Task TheWriter_WritesWholeLines_InWritesOfAtMost4KiB()
    {
        var output = new CapturedOutput();
        await using var writer = Writer(output);
        var lines = Enumerable.Range(0, 1000).Select(i => $"access n={i} " + new string('x', i % 300)).ToArray();
        foreach (var line in lines)
        {
            Assert.True(writer.Enqueue(line));
        }

        await writer.FlushAsync(CancellationToken.None);

        Assert.Equal(lines, output.Lines);
        Assert.All(output.Writes, w => Assert.True(w.Length <= AccessLogWriter.MaxWrite && w[^1] == (byte)'\n', $"a write of {w.Length} bytes"));
        Assert.True(output.Writes.Length < 100, $"{output.Writes.Length} writes for 1,000 lines");
    }

    [Fact]
    public async Task PastMaxQueued_LinesAreDroppedAndCounted_AndTheCountLogged()
    {
        var output = new CapturedOutput();
        var logs = new CapturingLoggerProvider();
        await using var writer = Writer(output, logs);
        for (var i = 0; i < AccessLogWriter.MaxQueued + 10; i++)
        {
            writer.Enqueue("access n=" + i);
        }

        Assert.Equal(10, writer.Dropped);
        await writer.FlushAsync(CancellationToken.None);

        Assert.Equal(AccessLogWriter.MaxQueued, output.Lines.Length);
        Assert.Contains(logs.Lines, l => l.Contains("[AccessLogDropped] 10 access log lines dropped", StringComparison.Ordinal));
        Assert.True(writer.Enqueue("access after")); // room again
    }

    /// <summary>Requests that end while Kestrel drains, after the hosted services were told to stop, still get their lines.</summary>
    [Fact]
    public async Task AfterStop_LinesAreStillWritten_AndTheLastAtDisposal()
    {
        var output = new CapturedOutput();
        var writer = Writer(output);
        await writer.StartAsync(CancellationToken.None);
        await writer.StopAsync(CancellationToken.None);
        writer.Enqueue("access during the drain");
        Assert.True(await Eventually.TrueAsync(() => output.Lines.Length == 1, TimeSpan.FromSeconds(5)), "a line queued after StopAsync was not written");

        writer.Enqueue("access last");
        await writer.DisposeAsync();

        Assert.Equal(["access during the drain", "access last"], output.Lines);
    }

    /// <summary>A request that ends after the writer was disposed (the host's last moments) is not failed by its line.</summary>
    [Fact]
    public async Task ALineQueuedAfterDisposal_DoesNotThrow()
    {
        var output = new CapturedOutput();
        var writer = Writer(output);
        await writer.DisposeAsync();

        for (var i = 0; i < AccessLogWriter.BatchLines + 1; i++)
        {
            writer.Enqueue("access after disposal"); // the batch's line wakes the writer, whose semaphore is disposed
        }

        Assert.Empty(output.Lines);
    }

    [Theory]
    [InlineData("/api/orders?token=secret", "/api/orders")]
    [InlineData("/a%0Ab", "/a%0Ab")]
    [InlineData("/a\nb c\u007f", "/a?b?c?")]
    [InlineData("*", "*")]
    [InlineData("http://example.com/x?y", "http://example.com/x")]
    public void ThePath_IsTheTargetWithoutItsQuery_AndNothingThatSplitsALine(string target, string logged)
        => Assert.Equal(logged, AccessLog.PathOf(target));

    [Fact]
    public void ALongPath_IsCut()
    {
        var logged = AccessLog.PathOf("/" + new string('a', 5000));
        Assert.Equal(AccessLog.MaxPathLength + 3, logged.Length);
        Assert.EndsWith("a...", logged, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "0af7651916cd43dd8448eb211c80319c")]
    [InlineData("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", "-")] // W3C: lower case only
    [InlineData("garbage", "-")]
    [InlineData("", "-")]
    public void TheTraceId_IsTheTraceparents(string traceParent, string traceId)
        => Assert.Equal(traceId, AccessLog.TraceIdOf(traceParent));

    /// <summary>Off by default; an edit turns it on without a restart, and every request the proxy endpoint sees gets its line.</summary>
    [Fact]
    public async Task OffByDefault_OnByAnEdit_OneLinePerRequest_TheGatewaysOwnAnswersIncluded()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.Config(("api", "/api/{**rest}", "c1"), ("c1", "RoundRobin", [(backend, null)]));
        var output = new CapturedOutput();
        await using var gateway = await GatewayUnderTest.StartAsync(config, services => CaptureAccessLog(services, output));
        using var client = gateway.CreateProxyClient();
        string[] AccessLines() => output.Lines;

        using (var before = await client.GetAsync("/api/before"))
        {
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        }

        config["Gateway"] = JsonNode.Parse("""{ "Telemetry": { "AccessLog": true } }""");
        gateway.WriteConfig(config);
        Assert.True(await gateway.SectionReloadedAsync("Gateway:Telemetry"));
        Assert.Empty(AccessLines()); // the request before the edit wrote none

        using (var request = new HttpRequestMessage(HttpMethod.Get, "/api/orders?token=secret"))
        {
            request.Headers.Add("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
            using var proxied = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, proxied.StatusCode);
        }

        using (var unrouted = await client.GetAsync("/nowhere"))
        {
            Assert.Equal(HttpStatusCode.NotFound, unrouted.StatusCode);
        }

        using (var ambiguous = await client.GetAsync("/api/..%5Cadmin"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, ambiguous.StatusCode);
        }

        Assert.True(await Eventually.TrueAsync(() => AccessLines().Length == 3, TimeSpan.FromSeconds(10)), string.Join("\n", AccessLines()));
        var lines = AccessLines();
        Assert.Contains(lines, l => l.StartsWith("access client=127.0.0.1 method=GET path=/api/orders protocol=HTTP/1.1 status=200 ms=", StringComparison.Ordinal)
            && l.EndsWith(" route=api cluster=c1 destination=a trace=0af7651916cd43dd8448eb211c80319c id=-", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("path=/nowhere protocol=HTTP/1.1 status=404 ", StringComparison.Ordinal) && l.EndsWith(" route=- cluster=- destination=- trace=- id=-", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("path=/api/..%5Cadmin protocol=HTTP/1.1 status=400 ", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("secret", StringComparison.Ordinal)); // the query may carry a token
    }

    /// <summary>A client that leaves before any answer is 499, as nginx logs it; its WebSocket-less request ends when the backend's does.</summary>
    [Fact]
    public async Task AClientThatLeavesBeforeTheAnswer_Is499()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["Gateway"] = JsonNode.Parse("""{ "Telemetry": { "AccessLog": true } }""");
        var output = new CapturedOutput();
        await using var gateway = await GatewayUnderTest.StartAsync(config, services => CaptureAccessLog(services, output));
        using var client = gateway.CreateProxyClient();

        using (var leaving = new CancellationTokenSource())
        {
            var held = client.GetAsync("/hold", leaving.Token);
            Assert.True(await Eventually.TrueAsync(() => backend.Held == 1, TimeSpan.FromSeconds(10)));
            leaving.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => held);
        }

        Assert.True(await Eventually.TrueAsync(() => output.Lines.Any(l => l.Contains(" path=/hold protocol=HTTP/1.1 status=499 ", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)),
            string.Join("\n", output.Lines));
    }

    internal static void CaptureAccessLog(IServiceCollection services, Stream output)
        => services.AddSingleton(sp => new AccessLogWriter(output, TimeProvider.System, sp.GetRequiredService<ILogger<AccessLogWriter>>()));
}
