using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;

namespace YarpGateway.Tests.WebSockets;

/// <summary>
/// A real Kestrel backend that accepts WebSocket upgrades itself and hands each upgraded raw stream
/// to the test, which then writes whatever frames it wants (malformed ones included). Requests to
/// <c>/refuse</c> are answered 403; ordinary requests 200.
/// </summary>
internal sealed class ScriptedWebSocketBackend : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Channel<BackendSocket> _accepted = Channel.CreateUnbounded<BackendSocket>();

    private ScriptedWebSocketBackend(WebApplication app) => _app = app;

    public Uri Address { get; private set; } = null!;

    public static async Task<ScriptedWebSocketBackend> StartAsync()
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var backend = new ScriptedWebSocketBackend(app);
        app.Run(backend.HandleAsync);
        await app.StartAsync();
        backend.Address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single() + "/");
        return backend;
    }

    /// <summary>The next upgraded connection (bounded wait).</summary>
    public async Task<BackendSocket> AcceptAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        return await _accepted.Reader.ReadAsync(timeout.Token);
    }

    private async Task HandleAsync(HttpContext context)
    {
        var upgrade = context.Features.Get<IHttpUpgradeFeature>();
        if (context.Request.Path == "/refuse" || upgrade is not { IsUpgradableRequest: true })
        {
            context.Response.StatusCode = context.Request.Path == "/refuse" ? StatusCodes.Status403Forbidden : StatusCodes.Status200OK;
            await context.Response.WriteAsync("not a websocket\n");
            return;
        }

        var key = context.Request.Headers["Sec-WebSocket-Key"].ToString();
#pragma warning disable CA5350 // RFC 6455 §4.2.2 defines Sec-WebSocket-Accept with SHA-1; not a security use
        var accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
#pragma warning restore CA5350
        context.Response.Headers["Upgrade"] = "websocket";
        context.Response.Headers["Sec-WebSocket-Accept"] = accept;
        var stream = await upgrade.UpgradeAsync();
        var socket = new BackendSocket(stream, context.Request.Path, context.Request.Headers["Sec-WebSocket-Extensions"].ToString());
        await _accepted.Writer.WriteAsync(socket);
        await socket.Finished.WaitAsync(context.RequestAborted).ContinueWith(_ => { }, TaskScheduler.Default);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>The backend's end of one upgraded connection; the test writes frames and reads what the client sent.</summary>
internal sealed class BackendSocket(Stream stream, string path, string extensions)
{
    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _sent;

    public Stream Stream { get; } = stream;

    public string Path { get; } = path;

    /// <summary>The Sec-WebSocket-Extensions request header as it reached the backend.</summary>
    public string Extensions { get; } = extensions;

    public long BytesSent => Interlocked.Read(ref _sent);

    public Task Finished => _finished.Task;

    public async Task SendAsync(byte[] frame, CancellationToken cancellationToken)
    {
        await Stream.WriteAsync(frame, cancellationToken);
        Interlocked.Add(ref _sent, frame.Length);
    }

    public Task<ReceivedFrame?> ReadFrameAsync(CancellationToken cancellationToken) => WebSocketFrames.ReadAsync(Stream, cancellationToken);

    /// <summary>Ends the connection (the backend's request completes).</summary>
    public void Finish() => _finished.TrySetResult();
}
