using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

// StormBench backend <ip:port>
//   A minimal Kestrel backend answering every request with a 2-byte body (for /close, and Connection: close).
// StormBench step-backend <ip:port> <knee> <base-ms> <ms-per-request-over>
//   A backend that slows past <knee> requests in flight: each request takes <base-ms>, plus
//   <ms-per-request-over> for every request in flight beyond <knee>. GET /stats returns the most in
//   flight seen and the latency percentiles of the requests served since the last /stats, as JSON.
// StormBench storm <ip:port> --existing N --storm M [--warmup-seconds S] [--timeout-seconds T]
//   N keep-alive clients send one GET a second (spread over the second); after the warm-up,
//   M new connections arrive at once, each sending one GET. Prints one JSON line of results. The
//   existing clients run in a child process (the "existing" mode), timed apart from the storm.
return args switch
{
    ["backend", var endpoint] => await Backend.RunAsync(IPEndPoint.Parse(endpoint)),
    ["step-backend", var endpoint, var knee, var baseMs, var perMs] => await StepBackend.RunAsync(IPEndPoint.Parse(endpoint),
        int.Parse(knee, CultureInfo.InvariantCulture), double.Parse(baseMs, CultureInfo.InvariantCulture), double.Parse(perMs, CultureInfo.InvariantCulture)),
    ["storm", var endpoint, .. var rest] => await Storm.RunAsync(IPEndPoint.Parse(endpoint), Options.Parse(rest)),
    ["existing", var endpoint, .. var rest] => await Storm.RunExistingAsync(IPEndPoint.Parse(endpoint), Options.Parse(rest)),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: StormBench backend <ip:port> | StormBench storm <ip:port> --existing N --storm M [--warmup-seconds S] [--timeout-seconds T]");
    return 2;
}

internal sealed record ExistingReport(double Started, double[][] Samples);

internal sealed record Options(int Existing, int StormSize, int WarmupSeconds, int TimeoutSeconds)
{
    public static Options Parse(string[] args)
    {
        int Get(string name, int fallback)
        {
            var i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
        }

        return new Options(Get("--existing", 1000), Get("--storm", 5000), Get("--warmup-seconds", 5), Get("--timeout-seconds", 60));
    }
}

internal static class Backend
{
    public static async Task<int> RunAsync(IPEndPoint endpoint)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.Listen(endpoint)).UseSockets(s => s.Backlog = 8192); // as nginx's listen in storm.sh
        var app = builder.Build();
        var body = "ok"u8.ToArray();
        app.Run(context =>
        {
            if (context.Request.Path.Equals("/close"))
            {
                // The proxy's backend connection ends with this answer: a warm-up of these runs the proxy's
                // new-backend-connection path (storm.sh: WARM_URL=http://127.0.0.1:8080/close).
                context.Response.Headers.Connection = "close";
            }

            context.Response.ContentLength = body.Length;
            return context.Response.Body.WriteAsync(body).AsTask();
        });
        await app.RunAsync();
        return 0;
    }
}

internal static class StepBackend
{
    private static int s_inFlight;
    private static int s_maxInFlight;
    private static readonly List<double> s_latencies = [];

    public static async Task<int> RunAsync(IPEndPoint endpoint, int knee, double baseMs, double perMs)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.Listen(endpoint)).UseSockets(s => s.Backlog = 8192); // as nginx's listen in storm.sh
        var app = builder.Build();
        var body = "ok"u8.ToArray();
        app.Run(async context =>
        {
            if (context.Request.Path == "/stats")
            {
                double[] sorted;
                int max;
                lock (s_latencies)
                {
                    sorted = [.. s_latencies.Order()];
                    s_latencies.Clear();
                    max = Interlocked.Exchange(ref s_maxInFlight, 0);
                }

                double Q(double p) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)(p * sorted.Length))];
                await context.Response.WriteAsync(JsonSerializer.Serialize(new { requests = sorted.Length, maxInFlight = max, p50Ms = Q(0.5), p99Ms = Q(0.99) }));
                return;
            }

            var inFlight = Interlocked.Increment(ref s_inFlight);
            for (var seen = Volatile.Read(ref s_maxInFlight); inFlight > seen; seen = Volatile.Read(ref s_maxInFlight))
            {
                Interlocked.CompareExchange(ref s_maxInFlight, inFlight, seen);
            }

            var started = Stopwatch.GetTimestamp();
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(baseMs + (perMs * Math.Max(0, inFlight - knee))));
                context.Response.ContentLength = body.Length;
                await context.Response.Body.WriteAsync(body);
            }
            finally
            {
                Interlocked.Decrement(ref s_inFlight);
                lock (s_latencies)
                {
                    s_latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                }
            }
        });
        await app.RunAsync();
        return 0;
    }
}

internal static class Storm
{
    private static readonly byte[] Request = Encoding.ASCII.GetBytes("GET /storm HTTP/1.1\r\nHost: bench\r\n\r\n");
    private static readonly byte[] CloseRequest = Encoding.ASCII.GetBytes("GET /storm HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");

    // Seconds on the monotonic clock, which both processes share.
    private static double Now() => Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;

    /// <summary>
    /// The storm, with the existing clients in a child process (<see cref="RunExistingAsync"/>). In one
    /// process, the storm's thousands of continuations queued on the same thread pool as the existing
    /// clients' reads, so their latency measured the load tool's own backlog (nginx showed a 1 s p99).
    /// </summary>
    public static async Task<int> RunAsync(IPEndPoint target, Options options)
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(options.WarmupSeconds + options.TimeoutSeconds + 30));
        using var child = StartExisting(target, options);
        if (await child.StandardOutput.ReadLineAsync(stop.Token) != "ready")
        {
            Console.Error.WriteLine("the existing clients' process did not start");
            return 1;
        }

        // The storm: all at once.
        var stormStart = Now();
        var storm = await Task.WhenAll(Enumerable.Range(0, options.StormSize).Select(_ => Task.Run(async () =>
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
                timeout.CancelAfter(TimeSpan.FromSeconds(options.TimeoutSeconds));
                using var socket = await ConnectAsync(target, timeout.Token);
                var ok = await RoundTripAsync(socket, CloseRequest, new byte[4096], timeout.Token);
                return (Ok: ok, Done: Now());
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException or IOException)
            {
                return (Ok: false, Done: Now());
            }
        })));
        var stormEnd = storm.Max(s => s.Done);

        // One more second of steady traffic after the storm, then stop.
        await Task.Delay(TimeSpan.FromSeconds(1));
        await child.StandardInput.WriteLineAsync("stop");
        await child.StandardInput.FlushAsync();
        var report = JsonSerializer.Deserialize<ExistingReport>(await child.StandardOutput.ReadLineAsync(stop.Token) ?? "null")
            ?? throw new InvalidOperationException("the existing clients' process reported nothing");
        await child.WaitForExitAsync(stop.Token);

        var all = report.Samples.Select(s => (At: s[0], LatencyMs: s[1], Ok: s[2] > 0)).ToList();
        var before = all.Where(s => s.Ok && s.At >= report.Started + (options.WarmupSeconds / 2.0) + 0.5 && s.At < stormStart).Select(s => s.LatencyMs).ToList();
        var during = all.Where(s => s.Ok && s.At >= stormStart && s.At <= stormEnd).Select(s => s.LatencyMs).ToList();
        var starts = all.Select(s => s.At).Order().ToArray();
        var gap = starts.Zip(starts.Skip(1)).Select(p => (Gap: p.Second - p.First, At: p.First - stormStart)).DefaultIfEmpty().MaxBy(p => p.Gap);
        if (gap.Gap > 0.1)
        {
            // 1,000 clients start a request every millisecond: a longer gap is the tool stalling, not the proxy.
            Console.Error.WriteLine($"warning: no existing client started a request for {gap.Gap * 1000:0} ms, from {gap.At * 1000:0} ms after the storm's start");
        }

        var result = new
        {
            existing = options.Existing,
            storm = options.StormSize,
            existingFailed = all.Count(s => !s.Ok),
            beforeP50Ms = Percentile(before, 0.50),
            beforeP99Ms = Percentile(before, 0.99),
            duringP50Ms = Percentile(during, 0.50),
            duringP99Ms = Percentile(during, 0.99),
            duringMaxMs = during.Count == 0 ? 0 : Math.Round(during.Max(), 1),
            duringSamples = during.Count,
            stormFailed = storm.Count(s => !s.Ok),
            stormServedSeconds = Math.Round(storm.Where(s => s.Ok).Select(s => s.Done).DefaultIfEmpty(stormStart).Max() - stormStart, 2),
        };
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    private static Process StartExisting(IPEndPoint target, Options options)
    {
        var host = Environment.ProcessPath ?? "dotnet";
        var start = new ProcessStartInfo(host) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet")
        {
            start.ArgumentList.Add(typeof(Storm).Assembly.Location);
        }

        foreach (var arg in new[] { "existing", target.ToString(), "--existing", options.Existing.ToString(CultureInfo.InvariantCulture), "--warmup-seconds", options.WarmupSeconds.ToString(CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the existing clients' process");
        try
        {
            // Above the storm's own process on the shared CPU (root only; otherwise said and run as is).
            process.PriorityClass = ProcessPriorityClass.High;
        }
        catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"the existing clients run at normal priority: {ex.Message}");
        }

        return process;
    }

    /// <summary>
    /// The existing clients: they connect gradually during the first half of the warm-up, then send one
    /// request a second each. Prints "ready" after the warm-up; on a line on stdin, stops and prints
    /// every sample (start time, latency, success) as one JSON line.
    /// </summary>
    public static async Task<int> RunExistingAsync(IPEndPoint target, Options options)
    {
        var started = Now();
        using var stop = new CancellationTokenSource();
        var samples = new List<double[]>[options.Existing];
        var existing = Enumerable.Range(0, options.Existing).Select(i => Task.Run(async () =>
        {
            samples[i] = [];
            var offset = TimeSpan.FromSeconds(options.WarmupSeconds / 2.0 * i / Math.Max(1, options.Existing));
            await Task.Delay(offset, stop.Token);
            using var socket = await ConnectAsync(target, stop.Token);
            var buffer = new byte[4096];
            var next = Now();
            while (!stop.IsCancellationRequested)
            {
                var at = Now();
                var ok = await RoundTripAsync(socket, Request, buffer, stop.Token);
                if (stop.IsCancellationRequested)
                {
                    return; // cut short by the end of the run, not a failure
                }

                samples[i].Add([at, Math.Round((Now() - at) * 1000, 2), ok ? 1 : 0]);
                if (!ok)
                {
                    return;
                }

                next += 1;
                var wait = next - Now();
                if (wait > 0)
                {
                    await Task.Delay(TimeSpan.FromSeconds(wait), stop.Token);
                }
            }
        }, stop.Token)).ToArray();

        await Task.Delay(TimeSpan.FromSeconds(options.WarmupSeconds));
        Console.WriteLine("ready");
        // Console.In reads synchronously, whatever the method's name: on a pool thread it held one of
        // this process's two for 500 ms, until the pool added a thread (a gap in every run).
        await Task.Factory.StartNew(Console.ReadLine, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        await stop.CancelAsync();
        try
        {
            await Task.WhenAll(existing);
        }
        catch (OperationCanceledException)
        {
        }

        Console.WriteLine(JsonSerializer.Serialize(new ExistingReport(started, [.. samples.Where(s => s is not null).SelectMany(s => s)])));
        return 0;
    }

    private static async Task<Socket> ConnectAsync(IPEndPoint target, CancellationToken cancellationToken)
    {
        var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(target, cancellationToken);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    // Sends a request and reads one response with a Content-Length body; false on any failure.
    private static async Task<bool> RoundTripAsync(Socket socket, byte[] request, byte[] buffer, CancellationToken cancellationToken)
    {
        try
        {
            await socket.SendAsync(request, SocketFlags.None, cancellationToken);
            var total = 0;
            while (true)
            {
                var read = await socket.ReceiveAsync(buffer.AsMemory(total), SocketFlags.None, cancellationToken);
                if (read == 0)
                {
                    return false;
                }

                total += read;
                var text = Encoding.ASCII.GetString(buffer, 0, total);
                var headEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
                if (headEnd < 0)
                {
                    continue;
                }

                var lengthLine = text[..headEnd].Split("\r\n").FirstOrDefault(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
                var length = lengthLine is null ? 0 : int.Parse(lengthLine["Content-Length:".Length..].Trim(), CultureInfo.InvariantCulture);
                if (total >= headEnd + 4 + length)
                {
                    return text.StartsWith("HTTP/1.1 200", StringComparison.Ordinal);
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or IOException)
        {
            return false;
        }
    }

    private static double Percentile(List<double> values, double p)
    {
        if (values.Count == 0)
        {
            return 0;
        }

        values.Sort();
        return Math.Round(values[Math.Min(values.Count - 1, (int)Math.Ceiling(p * values.Count) - 1)], 1);
    }
}
