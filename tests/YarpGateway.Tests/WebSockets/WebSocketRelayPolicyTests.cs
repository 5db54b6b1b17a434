using Microsoft.Extensions.Time.Testing;
using System.Collections.Concurrent;
using YarpGateway.Tests.Functional;
using YarpGateway.WebSockets;

namespace YarpGateway.Tests.WebSockets;

/// <summary>
/// The relay's policies frame by frame, against a client stream the test opens and closes: the
/// moments when the client is "not reading" are exact here, where over real sockets they depend on
/// how much the kernel absorbs. (The functional tests cover the same behaviour over real sockets.)
/// </summary>
public class WebSocketRelayPolicyTests
{
    private const int Cap = 1024;

    private static (WebSocketRelay Relay, GatedClientStream Client, RecordingHost Host) Create(SlowClientPolicy policy, TimeSpan? disconnectAfter = null, long maxDroppedBytes = 0)
    {
        var (relay, client, host, _) = CreateWithContext(policy, disconnectAfter, maxDroppedBytes);
        return (relay, client, host);
    }

    /// <summary>A relay on a client stream of its own, for tests of what sits around it.</summary>
    internal static WebSocketRelay CreateRelay(SlowClientPolicy policy, HttpContext? context = null) => CreateWithContext(policy, context: context).Relay;

    private static (WebSocketRelay Relay, GatedClientStream Client, RecordingHost Host, AbortRecorder Lifetime) CreateWithContext(SlowClientPolicy policy, TimeSpan? disconnectAfter = null, long maxDroppedBytes = 0, byte[]? fromClient = null, int cap = Cap, HttpContext? context = null, TimeProvider? time = null, long socketWriteQueue = 16 * 1024)
    {
        var settings = WebSocketSettings.Resolve(new WebSocketProxyOptions
        {
            OutboundBufferBytes = cap,
            SlowClientPolicy = policy,
            MaxDroppedMessages = 0,
            MaxDroppedBytes = maxDroppedBytes,
            DisconnectAfter = disconnectAfter ?? TimeSpan.FromSeconds(10),
            CloseTimeout = TimeSpan.FromSeconds(30),
        }, null, socketWriteQueue);
        var host = new RecordingHost();
        context ??= new DefaultHttpContext();
        var lifetime = new AbortRecorder();
        context.Features.Set<Microsoft.AspNetCore.Http.Features.IHttpRequestLifetimeFeature>(lifetime);
        var relay = new WebSocketRelay(settings, "r", context, host, new WebSocketCounters(), time ?? TimeProvider.System);
        var client = new GatedClientStream(fromClient);
        relay.Attach(client);
        return (relay, client, host, lifetime);
    }

    [Fact]
    public async Task Disconnect_TimingOutInTheMiddleOfAFrameLargerThanTheBuffer_AbortsInsteadOfCorruptingTheStream()
    {
        var (relay, client, host, lifetime) = CreateWithContext(SlowClientPolicy.Disconnect, TimeSpan.FromMilliseconds(200));
        var big = WebSocketFrames.Frame(WebSocketFrames.Binary, new byte[3000]); // larger than the 1024-byte cap

        await relay.WriteAsync(big, default).AsTask().WaitAsync(TimeSpan.FromSeconds(10)); // fills the buffer, waits, gives up mid-frame

        Assert.True(lifetime.Aborted, "the connection was not aborted");
        Assert.Equal([EvictionReason.BufferFull], host.Evictions);
        // Nothing more is accepted: the rest of the frame (or anything after it) can never be sent in step.
        await Assert.ThrowsAsync<IOException>(async () => await relay.WriteAsync(WebSocketFrames.TextFrame("late"), default));
        client.Open();
        Assert.DoesNotContain(client.Received, b => b == 0x88); // no close frame went in mid-frame (the payload is zeros)
    }

    [Fact]
    public async Task AfterTheBackendsCloseFrame_ADrainSendsNoSecondClose()
    {
        var (relay, client, host) = Create(SlowClientPolicy.Backpressure);

        await relay.WriteAsync(WebSocketFrames.CloseFrame(1000, masked: false), default); // the backend closes
        relay.RequestClose(CloseFrame.GoingAway, EvictionReason.Drain, "gateway restarting");

        client.Open();
        await relay.CompleteAsync().WaitAsync(TimeSpan.FromSeconds(10)); // everything buffered has been written
        var frames = await client.FramesAsync(1);
        Assert.Equal(1000, frames[0].CloseCode);
        Assert.Equal(4, client.Received.Length); // exactly one close frame: no 1001 after it
        Assert.Equal([EvictionReason.Drain], host.Evictions); // counted, and bounded by the close timeout
    }

    [Fact]
    public async Task AfterTheClientsCloseFrame_ADrainSendsNoCloseOfItsOwn_TheBackendsAnswerPasses()
    {
        var (relay, client, _, _) = CreateWithContext(SlowClientPolicy.Backpressure, fromClient: WebSocketFrames.CloseFrame(1000, masked: true));
        var buffer = new byte[64];

        Assert.Equal(8, await relay.ReadAsync(buffer, default)); // the client's close passes to the backend
        relay.RequestClose(CloseFrame.GoingAway, EvictionReason.Drain, "gateway restarting");
        await relay.WriteAsync(WebSocketFrames.CloseFrame(1000, masked: false), default); // the backend answers it

        client.Open();
        await relay.CompleteAsync().WaitAsync(TimeSpan.FromSeconds(10)); // everything buffered has been written
        var frames = await client.FramesAsync(1);
        Assert.Equal(1000, frames[0].CloseCode);
        Assert.Equal(4, client.Received.Length); // exactly the backend's close: no 1001 before or after it
    }

    private sealed class AbortRecorder : Microsoft.AspNetCore.Http.Features.IHttpRequestLifetimeFeature
    {
        public CancellationToken RequestAborted { get; set; }

        public bool Aborted { get; private set; }

        public void Abort() => Aborted = true;
    }

    [Fact]
    public async Task DropMessages_AMessageThatDoesNotFitIsDroppedWithAllItsFragments_ControlFramesAndLaterMessagesPass()
    {
        var (relay, client, _) = Create(SlowClientPolicy.DropMessages);

        // The client is not reading: its write waits, and half the cap counts as held below the buffer (by Kestrel).
        await relay.WriteAsync(WebSocketFrames.TextFrame(new string('a', 300)), default);              // fits: 304 buffered
        await relay.WriteAsync(WebSocketFrames.TextFrame(new string('b', 500), fin: false), default);  // 504 > 1024 - 304 - 512: dropped
        await relay.WriteAsync(WebSocketFrames.Frame(WebSocketFrames.Ping, "p"u8), default);           // control: passes
        await relay.WriteAsync(WebSocketFrames.Frame(WebSocketFrames.Continuation, "cc"u8, fin: false), default); // same message: dropped though it fits
        await relay.WriteAsync(WebSocketFrames.Frame(WebSocketFrames.Continuation, "dd"u8, fin: true), default);
        await relay.WriteAsync(WebSocketFrames.TextFrame("after"), default);                            // a new message that fits: passes

        Assert.Equal(1, relay.DroppedMessages);
        Assert.Equal(304 + 3 + 7, relay.BufferedBytes);
        client.Open();
        var frames = await client.FramesAsync(3);

        Assert.Equal([(WebSocketFrames.Text, 300), (WebSocketFrames.Ping, 1), (WebSocketFrames.Text, 5)], frames.Select(f => (f.Opcode, f.Payload.Length)));
        Assert.Equal("after", frames[2].Text);
        Assert.True(relay.PeakBufferedBytes <= Cap);
    }

    [Fact]
    public async Task DropMessages_WhileAWriteToTheClientWaits_WhatKestrelHoldsCountsAgainstTheCap()
    {
        // The default cap (64 KiB) and a client that stopped reading: its write waits, so Kestrel holds that write again and
        // its own queue (32 KiB together); the buffer takes messages only up to the other half.
        var (relay, client, _, _) = CreateWithContext(SlowClientPolicy.DropMessages, cap: 64 * 1024);
        var message = WebSocketFrames.Frame(WebSocketFrames.Binary, new byte[4096]); // 4,100 bytes with its header
        for (var i = 0; i < 30; i++)
        {
            await relay.WriteAsync(message, default);
        }

        Assert.True(relay.WriteBlocked);
        Assert.Equal(7 * 4100, relay.BufferedBytes); // 7 fit in 32 KiB; a full ring would have held 15
        Assert.Equal(23, relay.DroppedMessages);
        Assert.True(relay.PeakBufferedBytes <= 32 * 1024);

        client.Open();
        Assert.Equal(7, (await client.FramesAsync(7)).Count);
    }

    [Fact]
    public async Task DropMessages_WithALargerSocketWriteQueue_AllOfWhatKestrelHoldsCountsAgainstTheCap()
    {
        // A 256 KiB cap and Kestrel's queue raised to 64 KiB (Gateway:Transport:MaxWriteBufferSize): while the write waits,
        // Kestrel holds up to that write (16 KiB) and 64 KiB, so the ring takes messages only up to 176 KiB, not 224.
        var (relay, client, _, _) = CreateWithContext(SlowClientPolicy.DropMessages, cap: 256 * 1024, socketWriteQueue: 64 * 1024);
        var message = WebSocketFrames.Frame(WebSocketFrames.Binary, new byte[4096]); // 4,100 bytes with its header
        for (var i = 0; i < 80; i++)
        {
            await relay.WriteAsync(message, default);
        }

        Assert.True(relay.WriteBlocked);
        Assert.Equal(43 * 4100, relay.BufferedBytes); // 43 fit in 256 - 80 KiB; counting 32 KiB only, 55 would have
        Assert.Equal(37, relay.DroppedMessages);

        client.Open();
        Assert.Equal(43, (await client.FramesAsync(43)).Count);
    }

    [Fact]
    public async Task DropMessages_ReachingMaxDroppedBytes_Closes1008AfterWhatWasBuffered()
    {
        var (relay, client, host) = Create(SlowClientPolicy.DropMessages, maxDroppedBytes: 1000);

        await relay.WriteAsync(WebSocketFrames.TextFrame(new string('a', 600)), default);  // 604 buffered, client not reading
        await relay.WriteAsync(WebSocketFrames.TextFrame(new string('b', 500)), default);  // 504 dropped: under the limit
        Assert.Empty(host.Evictions);
        await relay.WriteAsync(WebSocketFrames.TextFrame(new string('c', 500)), default);  // 1008 dropped: over it
        await relay.WriteAsync(WebSocketFrames.TextFrame("late"), default);                // after the close: never sent

        Assert.Equal([EvictionReason.DropLimit], host.Evictions);
        client.Open();
        var frames = await client.FramesAsync(2);
        Assert.Equal(600, frames[0].Payload.Length);
        Assert.Equal(CloseFrame.PolicyViolation, frames[1].CloseCode);
        Assert.Contains("2 messages dropped", frames[1].Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DropMessages_TheRestOfAnAcceptedMessageWaitsForRoom_NeverCutInTwo()
    {
        var (relay, client, _) = Create(SlowClientPolicy.DropMessages);

        await relay.WriteAsync(WebSocketFrames.TextFrame(new string('a', 600), fin: false), default);
        var rest = relay.WriteAsync(WebSocketFrames.Frame(WebSocketFrames.Continuation, new byte[600], fin: true), default).AsTask();

        Assert.False(rest.IsCompleted); // waits: dropping it would cut the message in two
        client.Open();
        await rest.WaitAsync(TimeSpan.FromSeconds(10));
        var frames = await client.FramesAsync(2);
        Assert.Equal([(WebSocketFrames.Text, false), (WebSocketFrames.Continuation, true)], frames.Select(f => (f.Opcode, f.Fin)));
        Assert.Equal(0, relay.DroppedMessages);
    }

    [Fact]
    public async Task Backpressure_AFrameThatDoesNotFitGoesInAsRoomComes_TheBufferNeverExceedsTheCap()
    {
        var (relay, client, _) = Create(SlowClientPolicy.Backpressure);

        await relay.WriteAsync(WebSocketFrames.TextFrame(new string('a', 600)), default);
        var second = relay.WriteAsync(WebSocketFrames.TextFrame(new string('b', 600)), default).AsTask();

        Assert.False(second.IsCompleted);
        Assert.Equal(Cap, relay.BufferedBytes); // what fits went in; the rest waits, and says so
        Assert.True(relay.WriteParked);
        client.Open();
        await second.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(2, (await client.FramesAsync(2)).Count);
        Assert.True(relay.PeakBufferedBytes <= Cap);
        Assert.False(relay.WriteParked);
    }

    [Fact]
    public async Task TheRingGrowsWithWhatItHolds_WhileAWriteFromItWaits_AndEveryByteGoesOutInOrder()
    {
        const int BigCap = 64 * 1024;
        var (relay, client, _, _) = CreateWithContext(SlowClientPolicy.Backpressure, cap: BigCap);
        var frames = Enumerable.Range(0, 12).Select(i => WebSocketFrames.Frame(WebSocketFrames.Binary, Enumerable.Repeat((byte)i, 3000 + i).ToArray())).ToArray();

        await relay.WriteAsync(frames[0], default); // the drain takes it and its write waits: the client reads nothing
        Assert.Equal(WebSocketRelay.MinRingBytes, relay.RingBytes); // a small ring, not the 64 KiB cap
        foreach (var frame in frames[1..])
        {
            await relay.WriteAsync(frame, default); // each fits under the cap; the ring doubles as it fills
        }

        var buffered = frames.Sum(f => f.Length);
        Assert.Equal(buffered, relay.BufferedBytes);
        Assert.True(relay.RingBytes <= BigCap, $"ring {relay.RingBytes}");
        Assert.Equal(relay.RingBytes + WebSocketRelay.MinRingBytes, relay.HeldBytes); // and the first one, until the write from it returns
        client.Open();
        var received = await client.FramesAsync(frames.Length);
        Assert.Equal(frames.Length, received.Count);
        for (var i = 0; i < frames.Length; i++)
        {
            Assert.Equal(3000 + i, received[i].Payload.Length);
            Assert.All(received[i].Payload, b => Assert.Equal((byte)i, b));
        }

        Assert.True(await Eventually.TrueAsync(() => relay.HeldBytes == 0, TimeSpan.FromSeconds(10)), $"{relay.HeldBytes} bytes still held once empty");
        Assert.Equal(0, relay.BufferedBytes);
    }

    [Fact]
    public async Task BackendGate_ReadsOnlyWhatFits_ThenHoldsTheBackendBackWithNoWriteParked()
    {
        var (relay, client, _) = Create(SlowClientPolicy.Backpressure);
        var frames = Enumerable.Range(0, 4).SelectMany(i => WebSocketFrames.TextFrame(new string((char)('a' + i), 600))).ToArray();
        var backend = new ReadRecordingStream(frames);
        relay.AttachBackend(backend);

        var copy = relay.RunAsync(static _ => Task.CompletedTask); // YARP's handshake has returned

        Assert.True(await Eventually.TrueAsync(() => relay.BufferedBytes == Cap, TimeSpan.FromSeconds(10)), $"buffered {relay.BufferedBytes}");
        Assert.Equal(Cap, backend.Position); // no more was read than fits
        Assert.False(copy.IsCompleted); // held back in the gate's wait...
        Assert.False(relay.WriteParked); // ...not in a write with a read buffer parked in it
        Assert.Equal(0, backend.LastReadLength); // nor lent to the backend's stream: a socket keeps the last buffer it read into
        client.Open();
        await copy.WaitAsync(TimeSpan.FromSeconds(10));
        var received = await client.FramesAsync(4);
        Assert.Equal(["a", "b", "c", "d"], received.Select(f => f.Text[..1]));
        Assert.All(received, f => Assert.Equal(600, f.Payload.Length));
        Assert.True(relay.PeakBufferedBytes <= Cap);
    }

    [Fact]
    public async Task WriteTimeout_KeptWhileWritesCome_LetGoOnceIdleForASweep_AndMadeAgainForTheNextWrite()
    {
        // The system clock: a cancellation source on another TimeProvider cannot be reset, and is never kept.
        var (relay, client, _, _) = CreateWithContext(SlowClientPolicy.Backpressure, time: TimeProvider.System);
        client.Open();
        var backend = new System.IO.Pipelines.Pipe();
        relay.AttachBackend(backend.Reader.AsStream());
        var copy = relay.RunAsync(static _ => Task.CompletedTask); // YARP's handshake has returned
        static long Later(TimeSpan by) => TimeProvider.System.GetTimestamp() + (long)(by.TotalSeconds * TimeProvider.System.TimestampFrequency);

        await backend.Writer.WriteAsync(WebSocketFrames.TextFrame("one"));
        Assert.Equal("one", (await client.FramesAsync(1))[0].Text);
        Assert.True(await Eventually.TrueAsync(() => relay.HoldsWriteTimeout, TimeSpan.FromSeconds(10))); // kept for the next write

        relay.CloseIfIdle(TimeProvider.System.GetTimestamp());
        Assert.True(relay.HoldsWriteTimeout); // not idle long enough

        relay.CloseIfIdle(Later(WebSocketRelay.WriteTimeoutKeptFor));
        Assert.False(relay.HoldsWriteTimeout); // idle for a sweep: let go

        await backend.Writer.WriteAsync(WebSocketFrames.TextFrame("two"));
        Assert.Equal("two", (await client.FramesAsync(2))[1].Text);
        Assert.True(await Eventually.TrueAsync(() => relay.HoldsWriteTimeout, TimeSpan.FromSeconds(10))); // the next write made a new one

        await backend.Writer.CompleteAsync();
        await copy.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task RequestEnd_TakenOver_IsDoneOnceWhenTheRelayFinishes_AndRefusedAfter()
    {
        var (relay, client, _, _) = CreateWithContext(SlowClientPolicy.Backpressure);
        client.Open();
        var backend = new System.IO.Pipelines.Pipe();
        relay.AttachBackend(backend.Reader.AsStream());
        var copy = relay.RunAsync(static _ => Task.CompletedTask); // YARP's handshake has returned
        var end = new RecordingEnd(copy);

        Assert.True(relay.TakeRequestEnd(end, started: 42)); // the outer frame need not wait
        await backend.Writer.WriteAsync(WebSocketFrames.TextFrame("news"));
        Assert.Equal("news", (await client.FramesAsync(1))[0].Text);
        Assert.Empty(end.Started); // open: nothing ended

        await backend.Writer.CompleteAsync(); // the backend ends: the copy ends
        await copy.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal([42L], end.Started); // once
        Assert.Equal([false], end.RequestCompletedWhenCalled); // before the request's task completed
        Assert.False(relay.TakeRequestEnd(new RecordingEnd(copy), started: 7)); // finished: the caller ends the request itself
    }

    [Fact]
    public async Task Idle_ForTheActivityTimeout_IsClosedWith1001_BytesEitherWayStartTheClockAgain()
    {
        var time = new FakeTimeProvider();
        var (relay, client, host, _) = CreateWithContext(SlowClientPolicy.Backpressure, time: time);
        client.Open(); // the client takes what it is sent: no write waits while the clock moves
        var backend = new System.IO.Pipelines.Pipe();
        relay.AttachBackend(backend.Reader.AsStream());
        var copy = relay.RunAsync(static _ => Task.CompletedTask); // YARP's handshake has returned
        var almost = WebSocketRelay.DefaultActivityTimeout - TimeSpan.FromSeconds(1); // no cluster in the request: YARP's 100 s

        time.Advance(almost);
        relay.CloseIfIdle(time.GetTimestamp());
        Assert.Empty(host.Evictions);

        await backend.Writer.WriteAsync(WebSocketFrames.TextFrame("news"));
        Assert.Equal("news", (await client.FramesAsync(1))[0].Text);
        time.Advance(almost);
        relay.CloseIfIdle(time.GetTimestamp());
        Assert.Empty(host.Evictions); // the message started the clock again

        time.Advance(TimeSpan.FromSeconds(2));
        relay.CloseIfIdle(time.GetTimestamp());
        relay.CloseIfIdle(time.GetTimestamp()); // the sweep comes back every second: one close
        Assert.Equal([EvictionReason.Idle], host.Evictions);
        var frames = await client.FramesAsync(2);
        Assert.Equal("news", frames[0].Text);
        Assert.Equal(CloseFrame.GoingAway, frames[1].CloseCode);
        Assert.Contains("ActivityTimeout", frames[1].Text, StringComparison.Ordinal);

        await backend.Writer.CompleteAsync(); // the backend ends: the copy ends, the client's read with it
        await copy.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task BackendGate_DropMessages_NeverHoldsTheBackendBack()
    {
        var (relay, _, _) = Create(SlowClientPolicy.DropMessages);
        await relay.WriteAsync(WebSocketFrames.TextFrame(new string('a', 1000)), default); // the client reads nothing

        var limit = relay.BackendReadLimitAsync(default);

        Assert.True(limit.IsCompletedSuccessfully); // it keeps reading, and drops what does not fit
        Assert.Equal(int.MaxValue, await limit);
    }

    [Fact]
    public async Task Close_WhenTheFrameBeingBufferedHasNotBegunToGoOut_TakesItBackAndClosesAtOnce()
    {
        var (relay, client, host) = Create(SlowClientPolicy.Backpressure);
        var frame = WebSocketFrames.Frame(WebSocketFrames.Binary, new byte[300]);

        await relay.WriteAsync(WebSocketFrames.TextFrame(new string('a', 600)), default); // on its way; the client reads nothing
        await relay.WriteAsync(frame.AsMemory(0, 100), default); // the backend is in the middle of the next frame
        relay.RequestClose(CloseFrame.GoingAway, EvictionReason.Drain, "gateway restarting");

        Assert.Equal(604, relay.BufferedBytes); // the unsent part of the second frame was taken back
        await relay.WriteAsync(frame.AsMemory(100), default); // the rest of it is discarded
        client.Open();
        var frames = await client.FramesAsync(2);
        Assert.Equal(600, frames[0].Payload.Length);
        Assert.Equal(CloseFrame.GoingAway, frames[1].CloseCode);
        Assert.Equal([EvictionReason.Drain], host.Evictions);
    }

    [Fact]
    public async Task Disconnect_ABufferThatStaysFull_ClosesWith1013AfterWhatWasBuffered()
    {
        var (relay, client, host) = Create(SlowClientPolicy.Disconnect, TimeSpan.FromMilliseconds(200));

        await relay.WriteAsync(WebSocketFrames.TextFrame(new string('a', 600)), default);
        await relay.WriteAsync(WebSocketFrames.TextFrame(new string('b', 600)), default).AsTask().WaitAsync(TimeSpan.FromSeconds(10)); // gives up waiting

        Assert.Equal([EvictionReason.BufferFull], host.Evictions);
        client.Open();
        var frames = await client.FramesAsync(2);
        Assert.Equal(600, frames[0].Payload.Length);
        Assert.Equal(WebSocketFrames.Close, frames[1].Opcode);
        Assert.Equal(CloseFrame.TryAgainLater, frames[1].CloseCode);

        // After its close frame the gateway sends nothing more.
        await relay.WriteAsync(WebSocketFrames.TextFrame("late"), default);
        Assert.Equal(0, relay.BufferedBytes);
    }

    [Fact]
    public async Task Close_WaitsForTheFrameBeingBuffered_ThenGoesInAtItsEnd()
    {
        var (relay, client, host) = Create(SlowClientPolicy.Backpressure);
        var frame = WebSocketFrames.Frame(WebSocketFrames.Binary, new byte[300]);

        await relay.WriteAsync(frame.AsMemory(0, 100), default); // the backend is in the middle of a frame
        relay.RequestClose(CloseFrame.GoingAway, EvictionReason.Drain, "gateway restarting");
        await relay.WriteAsync(frame.AsMemory(100), default);    // the frame ends: the close goes in here
        await relay.WriteAsync(WebSocketFrames.TextFrame("never"), default);

        client.Open();
        var frames = await client.FramesAsync(2);
        Assert.Equal(300, frames[0].Payload.Length);
        Assert.Equal(CloseFrame.GoingAway, frames[1].CloseCode);
        Assert.Equal("gateway restarting", frames[1].Text);
        Assert.Equal([EvictionReason.Drain], host.Evictions);
    }

    /// <summary>A client side whose reading the test switches on: until then every write waits.</summary>
    private sealed class GatedClientStream(byte[]? fromClient = null) : Stream
    {
        private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly MemoryStream _received = new();
        private readonly Lock _lock = new();
        private byte[]? _fromClient = fromClient;

        public void Open() => _open.TrySetResult();

        /// <summary>Every byte written to the client so far.</summary>
        public byte[] Received
        {
            get
            {
                lock (_lock)
                {
                    return _received.ToArray();
                }
            }
        }

        public async Task<List<ReceivedFrame>> FramesAsync(int count)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            while (true)
            {
                byte[] bytes;
                lock (_lock)
                {
                    bytes = _received.ToArray();
                }

                using var stream = new MemoryStream(bytes);
                var frames = new List<ReceivedFrame>();
                while (frames.Count < count && stream.Position < stream.Length)
                {
                    try
                    {
                        frames.Add((await WebSocketFrames.ReadAsync(stream, timeout.Token))!);
                    }
                    catch (EndOfStreamException)
                    {
                        break;
                    }
                }

                if (frames.Count >= count)
                {
                    return frames;
                }

                await Task.Delay(10, timeout.Token); // polling a buffer the relay fills on its own schedule; bounded by the token
            }
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await _open.Task.WaitAsync(cancellationToken);
            lock (_lock)
            {
                _received.Write(buffer.Span);
            }
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (Interlocked.Exchange(ref _fromClient, null) is { } bytes)
            {
                bytes.CopyTo(buffer);
                return bytes.Length;
            }

            await Task.Delay(Timeout.Infinite, cancellationToken);
            return 0;
        }

        public override bool CanRead => true;

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

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            _received.Dispose();
            base.Dispose(disposing);
        }
    }

    private sealed class RecordingHost : IWebSocketRelayHost
    {
        public string RequestIdHeader => "X-Request-ID";

        public void CopyEnded(HttpContext context)
        {
        }

        private readonly ConcurrentQueue<EvictionReason> _evictions = new();

        public IReadOnlyList<EvictionReason> Evictions => _evictions.ToArray();

        public void Register(WebSocketRelay relay)
        {
        }

        public void Unregister(WebSocketRelay relay)
        {
        }

        public void Dropped(WebSocketRelay relay, int messages, long bytes)
        {
        }

        public void Evicted(WebSocketRelay relay, EvictionReason reason, ushort code, string detail) => _evictions.Enqueue(reason);
    }

    private sealed class RecordingEnd(Task request) : IRelayedRequestEnd
    {
        public List<long> Started { get; } = [];

        public List<bool> RequestCompletedWhenCalled { get; } = [];

        public void RequestEnded(HttpContext context, long started)
        {
            Started.Add(started);
            RequestCompletedWhenCalled.Add(request.IsCompleted);
        }
    }

    /// <summary>A backend stream that remembers how big a buffer it was last given to read into (a socket's receive operation keeps it).</summary>
    private sealed class ReadRecordingStream(byte[] data) : MemoryStream(data)
    {
        public int LastReadLength { get; private set; } = -1;

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            LastReadLength = buffer.Length;
            return base.ReadAsync(buffer, cancellationToken);
        }
    }
}
