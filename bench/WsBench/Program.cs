using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

// WsBench backend <port>
//   Kestrel on every address, HTTP/1.1 on <port> and HTTP/2 (h2c) on <port>+1: /idle accepts a WebSocket and holds it; /stream sends a binary message
//   of 1 KiB every 50 ms, its first 8 bytes the sender's monotonic timestamp; /hold completes the WebSocket handshake
//   by hand and waits on the upgraded stream with a zero-byte read, with no WebSocket object: the least any Kestrel
//   server (a proxy's client side included) can hold for an idle WebSocket.
// WsBench idle <port> <steps> <gateway-pid> [h1|h2] [path]
//   Opens idle WebSockets through the gateway up to each step (e.g. 10000,20000,50000) and prints the
//   gateway's RSS at each. h1 (default): one connection per WebSocket (HTTP/1.1 Upgrade), spread over
//   127.0.0.1-4 so that ephemeral ports do not run out. h2: WebSockets over HTTP/2 extended CONNECT
//   (RFC 8441), multiplexed on shared client connections (as many streams each as the gateway allows).
//   path: the request path (default /idle).
// WsBench slow <port> <slow> <fast> <seconds> <gateway-pid>
//   Fast clients read everything; slow clients read 4 KiB a second. Measures the fast clients'
//   message latency with the fast ones alone, then with the slow ones too, and the gateway's peak RSS.
// WsBench hold <port> <count> <seconds> <gateway-pid> <metrics-url>
//   Opens <count> idle WebSockets over HTTP/2 (extended CONNECT, multiplexed), then, while they are held,
//   20 HTTP/1.1 clients read /stream for <seconds>: reports how many opened, the gateway's RSS and open
//   descriptors, the fast clients' message latency, and the gateway's scheduler delays over that time
//   (from its Prometheus histograms: the bucket bound under which 50 % and 99 % of the samples fell).
// WsBench neverread <port> <readers> <fast> <seconds> <gateway-pid>
//   Fast clients read /stream; then <readers> clients open /flood (the backend sends 4 KiB messages as
//   fast as it is let) and never read. Reports the proxy's settled RSS before, with the never-readers
//   and after they leave, and the fast clients' latency while the never-readers are held.
return args switch
{
    ["backend", var port] => await Backend.RunAsync(int.Parse(port, CultureInfo.InvariantCulture)),
    ["idle", var port, var steps, var pid] => await Idle.RunAsync(int.Parse(port, CultureInfo.InvariantCulture), ParseSteps(steps), int.Parse(pid, CultureInfo.InvariantCulture), http2: false),
    ["idle", var port, var steps, var pid, var mode] when mode is "h1" or "h2" => await Idle.RunAsync(int.Parse(port, CultureInfo.InvariantCulture), ParseSteps(steps), int.Parse(pid, CultureInfo.InvariantCulture), http2: mode == "h2"),
    ["idle", var port, var steps, var pid, var mode, var path] when mode is "h1" or "h2" => await Idle.RunAsync(int.Parse(port, CultureInfo.InvariantCulture), ParseSteps(steps), int.Parse(pid, CultureInfo.InvariantCulture), http2: mode == "h2", path),
    ["hold", var port, var count, var seconds, var pid, var metrics] => await Hold100k.RunAsync(int.Parse(port, CultureInfo.InvariantCulture), int.Parse(count, CultureInfo.InvariantCulture), int.Parse(seconds, CultureInfo.InvariantCulture), int.Parse(pid, CultureInfo.InvariantCulture), metrics),
    ["neverread", var port, var readers, var fast, var seconds, var pid] => await NeverRead.RunAsync(int.Parse(port, CultureInfo.InvariantCulture), int.Parse(readers, CultureInfo.InvariantCulture), int.Parse(fast, CultureInfo.InvariantCulture), int.Parse(seconds, CultureInfo.InvariantCulture), int.Parse(pid, CultureInfo.InvariantCulture)),
    ["slow", var port, var slow, var fast, var seconds, var pid] => await Slow.RunAsync(int.Parse(port, CultureInfo.InvariantCulture), int.Parse(slow, CultureInfo.InvariantCulture), int.Parse(fast, CultureInfo.InvariantCulture), int.Parse(seconds, CultureInfo.InvariantCulture), int.Parse(pid, CultureInfo.InvariantCulture)),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: WsBench backend <port> | idle <port> <steps> <gateway-pid> [h1|h2] [path] | slow <port> <slow> <fast> <seconds> <gateway-pid> | neverread <port> <readers> <fast> <seconds> <gateway-pid>");
    return 2;
}

static int[] ParseSteps(string steps) => steps.Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();

internal static class Backend
{
    public static async Task<int> RunAsync(int port)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
        {
            k.ListenAnyIP(port);
            k.ListenAnyIP(port + 1, o => o.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http2); // h2c: WebSockets over HTTP/2 (RFC 8441)
            k.Limits.MaxConcurrentConnections = null;
            k.Limits.MaxConcurrentUpgradedConnections = null;
        });
        var app = builder.Build();
        app.Use(static next => context => context.Request.Path == "/hold" ? Hold.RunAsync(context) : next(context));
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero });
        app.Run(async context =>
        {
            if (!context.WebSockets.IsWebSocketRequest)
            {
                context.Response.StatusCode = 200;
                return;
            }

            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            if (context.Request.Path == "/flood")
            {
                // As fast as the proxy takes them: only backpressure slows this down.
                // Kestrel completes writes to a connection it has given up on without an error, so the end is
                // seen by a receive that runs alongside (the client's close or its connection's end) or the abort.
                var message = new byte[4096];
                try
                {
                    var receive = socket.ReceiveAsync(new byte[256], context.RequestAborted);
                    var inARow = 0;
                    while (!receive.IsCompleted && !context.RequestAborted.IsCancellationRequested)
                    {
                        var send = socket.SendAsync(message, WebSocketMessageType.Binary, true, context.RequestAborted);
                        if (!send.IsCompleted)
                        {
                            inARow = 0;
                            await send;
                        }
                        else if (++inARow % 64 == 0)
                        {
                            await Task.Yield(); // writes that never wait: let the receive see the end
                        }
                    }

                    await receive;
                }
                catch (Exception ex) when (ex is OperationCanceledException or WebSocketException or IOException)
                {
                }

                return;
            }

            if (context.Request.Path == "/stream")
            {
                var message = new byte[1024];
                using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(50));
                try
                {
                    while (await timer.WaitForNextTickAsync(context.RequestAborted))
                    {
                        BinaryPrimitives.WriteInt64LittleEndian(message, Stopwatch.GetTimestamp());
                        await socket.SendAsync(message, WebSocketMessageType.Binary, true, context.RequestAborted);
                    }
                }
                catch (Exception ex) when (ex is OperationCanceledException or WebSocketException or IOException)
                {
                }

                return;
            }

            try
            {
                await socket.ReceiveAsync(Memory<byte>.Empty, context.RequestAborted);
                await socket.ReceiveAsync(new byte[256], context.RequestAborted);
            }
            catch (Exception ex) when (ex is OperationCanceledException or WebSocketException or IOException)
            {
            }
        });
        await app.RunAsync();
        return 0;
    }
}

/// <summary>
/// /hold: accepts a WebSocket (HTTP/1.1 Upgrade or HTTP/2 extended CONNECT) without a WebSocket object and
/// waits on the upgraded stream with a zero-byte read until the client goes away: Kestrel's own cost of an
/// idle WebSocket, with no proxying.
/// </summary>
internal static class Hold
{
    public static async Task RunAsync(HttpContext context)
    {
        Stream stream;
        var connect = context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpExtendedConnectFeature>();
        if (connect is { IsExtendedConnect: true })
        {
            stream = await connect.AcceptAsync();
        }
        else
        {
            var upgrade = context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpUpgradeFeature>();
            if (upgrade is not { IsUpgradableRequest: true })
            {
                context.Response.StatusCode = 400;
                return;
            }

            var key = context.Request.Headers["Sec-WebSocket-Key"].ToString();
            context.Response.Headers.Connection = "Upgrade";
            context.Response.Headers.Upgrade = "websocket";
#pragma warning disable CA5350 // RFC 6455 fixes SHA-1 for Sec-WebSocket-Accept; it is not used for security here.
            context.Response.Headers["Sec-WebSocket-Accept"] = Convert.ToBase64String(
                System.Security.Cryptography.SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
#pragma warning restore CA5350
            stream = await upgrade.UpgradeAsync();
        }

        try
        {
            _ = await stream.ReadAsync(Memory<byte>.Empty, context.RequestAborted);
            var buffer = new byte[256];
            while (await stream.ReadAsync(buffer, context.RequestAborted) > 0)
            {
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException)
        {
        }
    }
}

/// <summary>A WebSocket over a raw socket: the handshake by hand, frames read from a small buffer.</summary>
internal sealed class RawClient(Socket socket)
{
    private readonly byte[] _buffer = new byte[8192];
    private int _start;
    private int _end;

    public Socket Socket { get; } = socket;

    public static async Task<RawClient> ConnectAsync(IPAddress address, int port, string path, CancellationToken cancellationToken, int receiveBuffer = 0)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (receiveBuffer > 0)
        {
            socket.ReceiveBufferSize = receiveBuffer;
        }

        await socket.ConnectAsync(new IPEndPoint(address, port), cancellationToken);
        var key = Convert.ToBase64String(Guid.NewGuid().ToByteArray());
        await socket.SendAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: {address}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"), cancellationToken);
        var client = new RawClient(socket);
        var head = await client.ReadHeadAsync(cancellationToken);
        if (!head.StartsWith("HTTP/1.1 101", StringComparison.Ordinal))
        {
            socket.Dispose();
            throw new IOException("upgrade refused: " + head.Split('\r')[0]);
        }

        return client;
    }

    private async Task<string> ReadHeadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var text = Encoding.ASCII.GetString(_buffer, 0, _end);
            var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end >= 0)
            {
                _start = end + 4;
                return text[..end];
            }

            var read = await Socket.ReceiveAsync(_buffer.AsMemory(_end), cancellationToken);
            if (read == 0)
            {
                throw new EndOfStreamException("closed during the handshake");
            }

            _end += read;
        }
    }

    /// <summary>Reads one frame and returns the first 8 payload bytes as a timestamp (0 if shorter), or null at the end.</summary>
    public async Task<long?> ReadFrameAsync(CancellationToken cancellationToken)
    {
        if (!await FillAsync(2, cancellationToken))
        {
            return null;
        }

        var len7 = _buffer[_start + 1] & 0x7F;
        var header = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
        if (!await FillAsync(header, cancellationToken))
        {
            return null;
        }

        long length = len7 switch
        {
            126 => BinaryPrimitives.ReadUInt16BigEndian(_buffer.AsSpan(_start + 2)),
            127 => (long)BinaryPrimitives.ReadUInt64BigEndian(_buffer.AsSpan(_start + 2)),
            _ => len7,
        };
        _start += header;
        long stamp = 0;
        if (length >= 8 && await FillAsync(8, cancellationToken))
        {
            stamp = BinaryPrimitives.ReadInt64LittleEndian(_buffer.AsSpan(_start));
        }

        // Skip the payload.
        while (length > 0)
        {
            if (_start == _end && !await FillAsync(1, cancellationToken))
            {
                return null;
            }

            var n = (int)Math.Min(length, _end - _start);
            _start += n;
            length -= n;
        }

        return stamp;
    }

    private async Task<bool> FillAsync(int needed, CancellationToken cancellationToken)
    {
        if (_end - _start >= needed)
        {
            return true;
        }

        Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
        _end -= _start;
        _start = 0;
        while (_end < needed)
        {
            var read = await Socket.ReceiveAsync(_buffer.AsMemory(_end), cancellationToken);
            if (read == 0)
            {
                return false;
            }

            _end += read;
        }

        return true;
    }
}

internal static class Gateway
{
    public static long RssKiB(int pid) => StatusField(pid, "VmRSS:");

    public static long PeakRssKiB(int pid) => StatusField(pid, "VmHWM:");

    /// <summary>
    /// The shared memory in the RSS: for .NET, the code the runtime compiles (with W^X it lives in a shared-memory file
    /// mapped twice), which grows once while new paths are compiled, not with each connection.
    /// </summary>
    public static long ShmemKiB(int pid) => StatusField(pid, "RssShmem:");

    private static long StatusField(int pid, string field)
    {
        var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith(field, StringComparison.Ordinal));
        return long.Parse(line[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
    }

    public static IPAddress Source(int i) => new([127, 0, 0, (byte)(1 + (i % 4))]);

    /// <summary>The <paramref name="q"/> quantile of sorted samples, rounded to 0.01 (NaN when there are none).</summary>
    public static double Percentile(double[] sorted, double q)
        => sorted.Length == 0 ? double.NaN : Math.Round(sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))], 2);
}

internal static class Idle
{
    public static async Task<int> RunAsync(int port, int[] steps, int pid, bool http2, string path = "/idle")
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(15));
        using var invoker = Http2Invoker();
        var clients = new List<IDisposable>();
        var failures = 0;
        var points = new List<(int Connections, long RssKiB)>();
        points.Add((0, await SettledRssAsync(pid, timeout.Token)));
        Console.Error.WriteLine($"0 connections: RSS {points[0].RssKiB} KiB");
        foreach (var step in steps)
        {
            var clock = Stopwatch.StartNew();
            var (opened, failed) = await OpenAsync(invoker, port, path, http2, clients.Count, step, timeout.Token);
            clients.AddRange(opened);
            failures += failed;

            var rss = await SettledRssAsync(pid, timeout.Token);
            points.Add((clients.Count, rss));
            Console.Error.WriteLine($"{clients.Count} connections ({failures} failed) in {clock.Elapsed.TotalSeconds:0.0} s: RSS {rss} KiB");
        }

        // Slope over the steps (least squares), leaving out the empty start with its one-time costs.
        var measured = points.Skip(1).ToArray();
        var meanX = measured.Average(p => (double)p.Connections);
        var meanY = measured.Average(p => (double)p.RssKiB);
        var spread = measured.Sum(p => (p.Connections - meanX) * (p.Connections - meanX));
        var slope = spread > 0 ? measured.Sum(p => (p.Connections - meanX) * (p.RssKiB - meanY)) / spread : 0;
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            points = points.Select(p => new { connections = p.Connections, rss_kib = p.RssKiB }),
            failures,
            slope_kib_per_connection = Math.Round(slope, 2),
            first_step_kib_per_connection = points[1].Connections > 0 ? Math.Round((double)(points[1].RssKiB - points[0].RssKiB) / points[1].Connections, 2) : 0,
        }));
        foreach (var client in clients)
        {
            client.Dispose();
        }

        return 0;
    }

    /// <summary>
    /// HTTP/2: one handler for all, so WebSockets share connections; a new one opens whenever the
    /// gateway's stream limit per connection (Kestrel's default: 100) is reached.
    /// </summary>
    public static HttpMessageInvoker Http2Invoker() => new(new SocketsHttpHandler
    {
        EnableMultipleHttp2Connections = true,
        PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
        PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
    });

    /// <summary>Opens WebSockets number <paramref name="from"/> to <paramref name="to"/> (exclusive), 200 at a time: those that opened, and how many failed.</summary>
    public static async Task<(List<IDisposable> Opened, int Failures)> OpenAsync(HttpMessageInvoker invoker, int port, string path, bool http2, int from, int to, CancellationToken cancellationToken)
    {
        var failures = 0;
        using var gate = new SemaphoreSlim(200);
        var opening = new List<Task<IDisposable?>>();
        for (var i = from; i < to; i++)
        {
            await gate.WaitAsync(cancellationToken);
            var index = i;
            opening.Add(Task.Run(async () =>
            {
                try
                {
                    return http2
                        ? await ConnectHttp2Async(invoker, port, path, cancellationToken)
                        : (IDisposable)(await RawClient.ConnectAsync(Gateway.Source(index), port, path, cancellationToken)).Socket;
                }
                catch (Exception ex) when (ex is IOException or SocketException or WebSocketException or HttpRequestException)
                {
                    Interlocked.Increment(ref failures);
                    return null;
                }
                finally
                {
                    gate.Release();
                }
            }));
        }

        return ((await Task.WhenAll(opening)).OfType<IDisposable>().ToList(), failures);
    }

    private static async Task<IDisposable> ConnectHttp2Async(HttpMessageInvoker invoker, int port, string path, CancellationToken cancellationToken)
    {
        var socket = new ClientWebSocket();
        socket.Options.HttpVersion = HttpVersion.Version20;
        socket.Options.HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        try
        {
            await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{port}{path}"), invoker, cancellationToken);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>RSS once it has stopped moving (two readings a second apart within 1 %), at most 20 s.</summary>
    public static async Task<long> SettledRssAsync(int pid, CancellationToken cancellationToken)
    {
        var last = Gateway.RssKiB(pid);
        for (var i = 0; i < 20; i++)
        {
            await Task.Delay(1000, cancellationToken);
            var now = Gateway.RssKiB(pid);
            if (Math.Abs(now - last) <= last / 100)
            {
                return now;
            }

            last = now;
        }

        return last;
    }
}

internal static class Slow
{
    private static int _phase; // 0 warm-up, 1 fast alone, 2 slow clients connecting, 3 fast with slow, 4 done

    public static async Task<int> RunAsync(int port, int slowCount, int fastCount, int seconds, int pid)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        var latencies = new List<double>[5][];
        for (var p = 0; p < latencies.Length; p++)
        {
            latencies[p] = Enumerable.Range(0, fastCount).Select(_ => new List<double>()).ToArray();
        }

        // Fast clients read everything, all the time; each sample goes to the phase it arrived in.
        var fast = new List<RawClient>();
        for (var i = 0; i < fastCount; i++)
        {
            fast.Add(await RawClient.ConnectAsync(Gateway.Source(i), port, "/stream", timeout.Token));
        }

        var readers = fast.Select((client, i) => Task.Run(async () =>
        {
            try
            {
                while (Volatile.Read(ref _phase) < 4 && await client.ReadFrameAsync(timeout.Token) is { } stamp)
                {
                    latencies[Volatile.Read(ref _phase)][i].Add(Stopwatch.GetElapsedTime(stamp).TotalMilliseconds);
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }, CancellationToken.None)).ToArray();

        await Task.Delay(TimeSpan.FromSeconds(3), timeout.Token);
        Volatile.Write(ref _phase, 1);
        var aloneRss = await SampleRssAsync(pid, TimeSpan.FromSeconds(seconds), timeout.Token);

        // Slow clients: read 4 KiB a second of a 20 KiB/s stream, with a small receive buffer.
        Volatile.Write(ref _phase, 2);
        using var stopSlow = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
        var slow = new List<Task>();
        for (var i = 0; i < slowCount; i++)
        {
            var client = await RawClient.ConnectAsync(Gateway.Source(i), port, "/stream", timeout.Token, receiveBuffer: 4096);
            slow.Add(Task.Run(async () =>
            {
                var chunk = new byte[4096];
                try
                {
                    while (!stopSlow.IsCancellationRequested && await client.Socket.ReceiveAsync(chunk, stopSlow.Token) > 0)
                    {
                        await Task.Delay(1000, stopSlow.Token);
                    }
                }
                catch (Exception ex) when (ex is OperationCanceledException or SocketException)
                {
                }
                finally
                {
                    client.Socket.Dispose();
                }
            }, CancellationToken.None));
        }

        // Let the slow clients' buffers fill before measuring.
        await Task.Delay(TimeSpan.FromSeconds(5), timeout.Token);
        Volatile.Write(ref _phase, 3);
        var withRss = await SampleRssAsync(pid, TimeSpan.FromSeconds(seconds), timeout.Token);
        Volatile.Write(ref _phase, 4);
        await stopSlow.CancelAsync();
        await Task.WhenAll(slow);
        foreach (var client in fast)
        {
            client.Socket.Dispose();
        }

        await Task.WhenAll(readers);
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            fast = fastCount,
            slow = slowCount,
            alone = Summary(latencies[1], aloneRss),
            with_slow = Summary(latencies[3], withRss),
            gateway_peak_rss_kib = Gateway.PeakRssKiB(pid),
        }));
        return 0;
    }

    private static async Task<long> SampleRssAsync(int pid, TimeSpan duration, CancellationToken cancellationToken)
    {
        var max = 0L;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < duration)
        {
            max = Math.Max(max, Gateway.RssKiB(pid));
            await Task.Delay(250, cancellationToken);
        }

        return max;
    }

    private static object Summary(List<double>[] perClient, long maxRss)
    {
        var all = perClient.SelectMany(l => l).Order().ToArray();
        double P(double q) => Gateway.Percentile(all, q);
        return new { messages = all.Length, p50_ms = P(0.5), p99_ms = P(0.99), max_ms = all.Length == 0 ? double.NaN : Math.Round(all[^1], 2), max_rss_kib = maxRss };
    }
}

internal static class NeverRead
{
    public static async Task<int> RunAsync(int port, int readerCount, int fastCount, int seconds, int pid)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        var during = new List<double>();
        var measuring = 0;
        var fast = new List<RawClient>();
        for (var i = 0; i < fastCount; i++)
        {
            fast.Add(await RawClient.ConnectAsync(Gateway.Source(i), port, "/stream", timeout.Token));
        }

        var readers = fast.Select(client => Task.Run(async () =>
        {
            try
            {
                while (await client.ReadFrameAsync(timeout.Token) is { } stamp)
                {
                    if (Volatile.Read(ref measuring) == 1)
                    {
                        lock (during)
                        {
                            during.Add(Stopwatch.GetElapsedTime(stamp).TotalMilliseconds);
                        }
                    }
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }, CancellationToken.None)).ToArray();

        var before = await Idle.SettledRssAsync(pid, timeout.Token);
        var codeBefore = Gateway.ShmemKiB(pid);

        // The never-readers: the smallest receive buffer the kernel allows, and no read after the handshake.
        var never = new List<RawClient>();
        var failures = 0;
        for (var i = 0; i < readerCount; i++)
        {
            try
            {
                never.Add(await RawClient.ConnectAsync(Gateway.Source(i), port, "/flood", timeout.Token, receiveBuffer: 1024));
            }
            catch (Exception ex) when (ex is IOException or SocketException)
            {
                failures++;
            }
        }

        var with = await Idle.SettledRssAsync(pid, timeout.Token);
        Volatile.Write(ref measuring, 1);
        await Task.Delay(TimeSpan.FromSeconds(seconds), timeout.Token);
        Volatile.Write(ref measuring, 0);
        var held = Gateway.RssKiB(pid);
        var codeWith = Gateway.ShmemKiB(pid);
        foreach (var client in never)
        {
            client.Socket.Dispose();
        }

        // Long enough for the gateway to see the drop hold (Gateway:Memory:SettleTime, 5 s) and compact.
        await Task.Delay(TimeSpan.FromSeconds(8), timeout.Token);
        var after = await Idle.SettledRssAsync(pid, timeout.Token);
        foreach (var client in fast)
        {
            client.Socket.Dispose();
        }

        await Task.WhenAll(readers);
        var all = during.Order().ToArray();
        double P(double q) => Gateway.Percentile(all, q);
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            readers = never.Count,
            failures,
            rss_before_kib = before,
            rss_with_kib = Math.Max(with, held),
            rss_after_kib = after,
            kib_per_reader = never.Count == 0 ? 0 : Math.Round((double)(Math.Max(with, held) - before) / never.Count, 1),
            code_grown_kib = codeWith - codeBefore,
            fast_messages = all.Length,
            fast_p50_ms = P(0.5),
            fast_p99_ms = P(0.99),
        }));
        return 0;
    }
}

internal static class Hold100k
{
    public static async Task<int> RunAsync(int port, int count, int seconds, int pid, string metricsUrl)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(30));
        using var invoker = Idle.Http2Invoker();
        var clock = Stopwatch.StartNew();
        var (clients, failures) = await Idle.OpenAsync(invoker, port, "/idle", http2: true, 0, count, timeout.Token);
        var openSeconds = clock.Elapsed.TotalSeconds;
        Console.Error.WriteLine($"{clients.Count} open ({failures} failed) in {openSeconds:0} s");
        var rss = await Idle.SettledRssAsync(pid, timeout.Token);
        var fds = Directory.GetFiles($"/proc/{pid}/fd").Length;

        using var http = new HttpClient();
        var before = await ScrapeAsync(http, metricsUrl, timeout.Token);
        var latencies = new List<double>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
        stop.CancelAfter(TimeSpan.FromSeconds(seconds));
        var fast = new List<RawClient>();
        for (var i = 0; i < 20; i++)
        {
            fast.Add(await RawClient.ConnectAsync(Gateway.Source(i), port, "/stream", timeout.Token));
        }

        await Task.WhenAll(fast.Select(client => Task.Run(async () =>
        {
            try
            {
                while (await client.ReadFrameAsync(stop.Token) is { } stamp)
                {
                    lock (latencies)
                    {
                        latencies.Add(Stopwatch.GetElapsedTime(stamp).TotalMilliseconds);
                    }
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException)
            {
            }
        }, CancellationToken.None)));
        var after = await ScrapeAsync(http, metricsUrl, timeout.Token);
        foreach (var client in fast)
        {
            client.Socket.Dispose();
        }

        var all = latencies.Order().ToArray();
        double P(double q) => Gateway.Percentile(all, q);
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            requested = count,
            opened = clients.Count,
            failures,
            open_seconds = Math.Round(openSeconds, 1),
            gateway_rss_kib = rss,
            gateway_fds = fds,
            fast_messages = all.Length,
            fast_p50_ms = P(0.5),
            fast_p99_ms = P(0.99),
            scheduler_delay_p50_le_s = Quantile(before, after, "gateway_scheduler_delay_seconds_bucket", 0.5),
            scheduler_delay_p99_le_s = Quantile(before, after, "gateway_scheduler_delay_seconds_bucket", 0.99),
            socket_delay_p99_le_s = Quantile(before, after, "gateway_scheduler_socket_delay_seconds_bucket", 0.99),
        }));
        foreach (var client in clients)
        {
            client.Dispose();
        }

        return 0;
    }

    private static async Task<string[]> ScrapeAsync(HttpClient http, string url, CancellationToken cancellationToken)
        => (await http.GetStringAsync(url, cancellationToken)).Split('\n');

    /// <summary>The smallest bucket bound holding the quantile of the samples taken between the two scrapes.</summary>
    private static string Quantile(string[] before, string[] after, string bucket, double q)
    {
        static Dictionary<string, double> Buckets(string[] lines, string bucket) => lines
            .Where(l => l.StartsWith(bucket + "{", StringComparison.Ordinal))
            .Select(l => (Le: l[(l.IndexOf("le=\"", StringComparison.Ordinal) + 4)..l.IndexOf('"', l.IndexOf("le=\"", StringComparison.Ordinal) + 4)], Count: double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture)))
            .GroupBy(b => b.Le).ToDictionary(g => g.Key, g => g.Sum(b => b.Count));
        var a = Buckets(after, bucket);
        var b = Buckets(before, bucket);
        var deltas = a.Select(kv => (Le: kv.Key, Count: kv.Value - b.GetValueOrDefault(kv.Key)))
            .OrderBy(d => d.Le == "+Inf" ? double.PositiveInfinity : double.Parse(d.Le, CultureInfo.InvariantCulture)).ToArray();
        if (deltas.Length == 0 || deltas[^1].Count <= 0)
        {
            return "n/a";
        }

        var total = deltas[^1].Count;
        return deltas.First(d => d.Count >= q * total).Le;
    }
}

