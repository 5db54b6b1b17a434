using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace YarpGateway.Tests.Functional;

/// <summary>
/// A real Kestrel backend on 127.0.0.1, port 0. Answers every request with its name, counts what
/// it received, and can be told to answer health probes with a chosen status.
/// </summary>
internal sealed class TestBackend : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _requests;

    private TestBackend(string name, WebApplication app)
    {
        Name = name;
        _app = app;
    }

    public string Name { get; }

    /// <summary>Requests received, health probes excluded.</summary>
    public int Requests => Volatile.Read(ref _requests);

    /// <summary>Active health probes received on /health.</summary>
    public int HealthProbes => Volatile.Read(ref _healthProbes);

    private int _healthProbes;

    /// <summary>Status answered on /health (YARP active health checks).</summary>
    public HttpStatusCode HealthStatus { get; set; } = HttpStatusCode.OK;

    public Uri Address { get; private set; } = null!;

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, TaskCompletionSource> _gates = new();
    private int _held;
    private int _maxHeld;

    /// <summary>Requests to /hold wait for this gate (or for the client to go away).</summary>
    public TaskCompletionSource Gate => GateFor("hold");

    /// <summary>Requests to /hold/{name} wait for the gate of that name.</summary>
    public TaskCompletionSource GateFor(string name) => _gates.GetOrAdd(name, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    /// <summary>Requests currently waiting at any gate.</summary>
    public int Held => Volatile.Read(ref _held);

    /// <summary>The most requests that were ever waiting at gates at once.</summary>
    public int MaxHeld => Volatile.Read(ref _maxHeld);

    /// <summary>When set, every request (health probes excepted) is answered with this status.</summary>
    public HttpStatusCode? ForcedStatus { get; set; }

    /// <summary>When set, every request waits this long before answering (or until the gateway cancels it).</summary>
    public TimeSpan? Delay { get; set; }

    /// <summary>When set, each request waits this long, given the requests in flight at the backend (itself included).</summary>
    public Func<int, TimeSpan>? LatencyForInFlight { get; set; }

    private int _inFlight;

    /// <summary>Requests the gateway cancelled while this backend was still working on them.</summary>
    public int Cancelled => Volatile.Read(ref _cancelled);

    private int _cancelled;

    public int Port => Address.Port;

    /// <summary>The bodies of requests that had one, in arrival order.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> Bodies { get; } = new();

    /// <summary>The client port of each request, in arrival order: which of the gateway's connections carried it.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<int> RemotePorts { get; } = new();

    /// <summary>The request target of each request exactly as it arrived.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> RawTargets { get; } = new();

    /// <summary>The traceparent header of each request, in arrival order ("" when it had none).</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> TraceParents { get; } = new();

    public static Task<TestBackend> StartAsync(string name) => StartAsync(name, port: 0);

    /// <summary>Starts on a given port (0: any), e.g. to bring a stopped backend back where it was.</summary>
    public static Task<TestBackend> StartAsync(string name, int port) => StartAsync(name, kestrel => kestrel.Listen(IPAddress.Loopback, port));

    /// <summary>Starts over TLS (a self-signed certificate for 127.0.0.1) with the given protocols, offered by ALPN.</summary>
    public static Task<TestBackend> StartHttpsAsync(string name, Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols protocols)
        => StartHttpsAsync(name, protocols, TestCertificate.SelfSignedLoopback());

    /// <summary>Starts over TLS with <paramref name="certificate"/>, for a test that makes the gateway trust it.</summary>
    public static Task<TestBackend> StartHttpsAsync(string name, Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols protocols, System.Security.Cryptography.X509Certificates.X509Certificate2 certificate)
        => StartAsync(name, kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
        {
            listen.Protocols = protocols;
            listen.UseHttps(certificate);
        }));

    /// <summary>Starts on one free port on both 127.0.0.1 and ::1, so that <c>localhost</c> reaches it at every address it resolves to.</summary>
    public static Task<TestBackend> StartOnBothLoopbacksAsync(string name)
    {
        var port = LoopbackPort.Unused();
        return StartAsync(name, kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, port);
            kestrel.Listen(IPAddress.IPv6Loopback, port);
        });
    }

    /// <summary>The local address each request arrived on, in arrival order.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> LocalAddresses { get; } = new();

    /// <summary>Each request's headers, as the backend received them (name, values joined by a comma).</summary>
    public System.Collections.Concurrent.ConcurrentQueue<Dictionary<string, string>> RequestHeaders { get; } = new();

    private static async Task<TestBackend> StartAsync(string name, Action<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions> listen)
    {
        // No configuration sources: the gateway's appsettings.json sits in this folder too.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(listen);
        var app = builder.Build();
        var backend = new TestBackend(name, app);
        app.Run(async context =>
        {
            // YARP appends the probe path to the destination address, which may end in '/'.
            if (context.Request.Path.Value?.TrimStart('/') == "health")
            {
                Interlocked.Increment(ref backend._healthProbes);
                context.Response.StatusCode = (int)backend.HealthStatus;
                return;
            }

            Interlocked.Increment(ref backend._requests);
            backend.TraceParents.Enqueue(context.Request.Headers.TraceParent.ToString());
            backend.RemotePorts.Enqueue(context.Connection.RemotePort);
            backend.LocalAddresses.Enqueue(context.Connection.LocalIpAddress?.ToString() ?? "?");
            backend.RawTargets.Enqueue(context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()!.RawTarget);
            backend.RequestHeaders.Enqueue(context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase));
            if (context.Request.Path == "/own-request-id")
            {
                context.Response.Headers["X-Request-ID"] = "backend-own"; // a backend that sets an id of its own
            }

            if (context.Request.Path == "/private")
            {
                context.Response.Headers.CacheControl = "private";
            }
            if (context.Request.Path.StartsWithSegments("/vary", out var varied) && varied.HasValue)
            {
                // GET /vary/{Header}: "Vary: {Header}", and the body is the backend's name and that request header's value.
                var header = varied.Value![1..];
                context.Response.Headers.Vary = header;
                await context.Response.WriteAsync($"{name} {context.Request.Headers[header]}", context.RequestAborted);
                return;
            }

            if (context.Request.Path.StartsWithSegments("/set-cookie", out var cookie) && cookie.HasValue)
            {
                // GET /set-cookie/{name}: "Set-Cookie: {name}=1", as a backend that starts a session on a page it lets caches keep.
                context.Response.Headers.SetCookie = $"{cookie.Value![1..]}=1; path=/";
            }

            if (context.Request.Path.StartsWithSegments("/cache-control", out var directives) && directives.HasValue)
            {
                // GET /cache-control/{directives}: "Cache-Control: {directives}", as a backend that sets its responses' freshness.
                context.Response.Headers.CacheControl = directives.Value![1..];
            }

            if (context.Request.Path == "/big-headers")
            {
                // Response headers past SocketsHttpHandler's 64 KiB limit (a page that sets many large cookies, say).
                for (var i = 0; i < 40; i++)
                {
                    context.Response.Headers[$"X-Big-{i}"] = new string('x', 2000);
                }
            }

            if (context.Request.Path.StartsWithSegments("/upload-limit", out var limitText) && long.TryParse(limitText.Value.AsSpan(1), out var limit))
            {
                // POST /upload-limit/N: an upload endpoint that takes at most N bytes, as [RequestSizeLimit(N)] sets it;
                // Kestrel answers 413 for a larger Content-Length before reading any of the body, then closes.
                context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>()!.MaxRequestBodySize = limit;
                await context.Request.Body.CopyToAsync(Stream.Null, context.RequestAborted);
                return;
            }

            if (context.Request.Path == "/400-at-head")
            {
                // A 400 with no body, given at the head with nothing read (a header the backend refuses, say).
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                return;
            }

            if (context.Request.Path.StartsWithSegments("/answer-at-head", out var codeText) && int.TryParse(codeText.Value.AsSpan(1), out var code))
            {
                // POST /answer-at-head/N: status N given at the head with nothing of the body read, as an endpoint that
                // redirects an upload to a login page (303) or accepts it without reading it (200, 202).
                context.Response.StatusCode = code;
                if (code is >= 300 and < 400)
                {
                    context.Response.Headers.Location = "/login";
                }

                return;
            }

            if (context.Request.Path == "/refused-streamed")
            {
                // A refusal whose body is written as it is made, so of no known length (chunked over HTTP/1.1), given at
                // the head with nothing of the request's body read.
                context.Response.StatusCode = StatusCodes.Status403Forbidden;
                await context.Response.WriteAsync("refused: ", context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
                await context.Response.WriteAsync("no uploads here\n", context.RequestAborted);
                return;
            }

            if (context.Request.Path == "/reset-at-head")
            {
                // Drop the request at its head, nothing read and no response (over HTTP/2: RST_STREAM), as a backend
                // that crashes or stops mid-upload.
                context.Abort();
                return;
            }

            if (context.Request.Path == "/reset")
            {
                // Read the whole request, then drop the connection without a response.
                await context.Request.Body.CopyToAsync(Stream.Null, context.RequestAborted);
                context.Abort();
                return;
            }

            if (context.Request.ContentLength > 0 || context.Request.Headers.TransferEncoding.Count > 0)
            {
                using var reader = new StreamReader(context.Request.Body);
                backend.Bodies.Enqueue(await reader.ReadToEndAsync(context.RequestAborted));
            }

            if (backend.LatencyForInFlight is { } latency)
            {
                var inFlight = Interlocked.Increment(ref backend._inFlight);
                try
                {
                    await Task.Delay(latency(inFlight), context.RequestAborted);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                finally
                {
                    Interlocked.Decrement(ref backend._inFlight);
                }
            }

            if (backend.Delay is { } delay)
            {
                try
                {
                    await Task.Delay(delay, context.RequestAborted);
                }
                catch (OperationCanceledException)
                {
                    Interlocked.Increment(ref backend._cancelled);
                    return;
                }
            }

            if (backend.ForcedStatus is { } status)
            {
                context.Response.StatusCode = (int)status;
                await context.Response.WriteAsync($"{name} {(int)status}", context.RequestAborted);
                return;
            }

            if (context.Request.Path == "/stream")
            {
                // A response that starts at once and then streams until the "stream" gate opens.
                await context.Response.WriteAsync(name, context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
                await backend.GateFor("stream").Task.WaitAsync(context.RequestAborted);
                return;
            }

            if (context.Request.Path == "/events")
            {
                // A server-sent event stream that ends after one event, numbered by the requests this backend has had.
                context.Response.ContentType = "text/event-stream";
                await context.Response.WriteAsync($"data: {backend.Requests}\n\n", context.RequestAborted);
                return;
            }

            if (context.Request.Path == "/forwarded-for")
            {
                await context.Response.WriteAsync(context.Request.Headers["X-Forwarded-For"].ToString(), context.RequestAborted);
                return;
            }

            if (context.Request.Path == "/endless")
            {
                // The alphabet, 64 KiB at a time, until the gateway goes away: a body no copy can finish, whatever the
                // scheduler does meanwhile.
                var chunk = Alphabet(64 * 1024);
                while (!context.RequestAborted.IsCancellationRequested)
                {
                    await context.Response.Body.WriteAsync(chunk, context.RequestAborted);
                }

                return;
            }

            if (context.Request.Path.StartsWithSegments("/bytes", out var size) && int.TryParse(size.Value.AsSpan(1), out var length))
            {
                // GET /bytes/N: N bytes of the alphabet repeated, for responses larger than any one buffer; with
                // "Range: bytes=A-B", those bytes as a 206, as a static file server answers a video player.
                var bytes = Alphabet(length);
                if (System.Net.Http.Headers.RangeHeaderValue.TryParse(context.Request.Headers.Range.ToString(), out var range)
                    && range.Ranges.Single() is { From: { } from, To: { } to } && to < length)
                {
                    context.Response.StatusCode = StatusCodes.Status206PartialContent;
                    context.Response.Headers.ContentRange = $"bytes {from}-{to}/{length}";
                    bytes = bytes[(int)from..(int)(to + 1)];
                }

                context.Response.ContentLength = bytes.Length;
                await context.Response.Body.WriteAsync(bytes, context.RequestAborted);
                return;
            }

            if (context.Request.Path.StartsWithSegments("/hold", out var rest))
            {
                var held = Interlocked.Increment(ref backend._held);
                for (var max = backend.MaxHeld; held > max; max = backend.MaxHeld)
                {
                    Interlocked.CompareExchange(ref backend._maxHeld, held, max);
                }

                try
                {
                    var gate = rest.HasValue && rest.Value!.Length > 1 ? backend.GateFor(rest.Value[1..]) : backend.Gate;
                    await gate.Task.WaitAsync(context.RequestAborted);
                }
                finally
                {
                    Interlocked.Decrement(ref backend._held);
                }
            }

            await context.Response.WriteAsync(name, context.RequestAborted);
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First(a => a.Contains("127.0.0.1", StringComparison.Ordinal));
        backend.Address = new Uri(address + "/");
        return backend;
    }

    /// <summary>Stops at once, as SIGKILL would: the listener closes and open connections are aborted, in-flight requests get no answer.</summary>
    public async Task KillAsync()
    {
        await _app.StopAsync(new CancellationToken(canceled: true));
        await _app.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    /// <summary>The body of <c>GET /bytes/N</c>: <paramref name="length"/> bytes of a-z repeated.</summary>
    public static byte[] Alphabet(int length)
    {
        var bytes = new byte[length];
        for (var i = 0; i < length; i++)
        {
            bytes[i] = (byte)('a' + (i % 26));
        }

        return bytes;
    }
}
