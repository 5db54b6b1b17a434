using System.Net;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace YarpGateway.Tests.WebSockets;

/// <summary>A real Kestrel WebSocket server on loopback that echoes every frame as it came (type and fragmentation kept).</summary>
internal sealed class EchoWebSocketBackend : IAsyncDisposable
{
    private readonly WebApplication _app;

    private EchoWebSocketBackend(WebApplication app) => _app = app;

    private int _accepted;
    private int _acceptedOverHttp2;

    public int Accepted => Volatile.Read(ref _accepted);

    /// <summary>WebSockets that reached this backend as HTTP/2 extended CONNECT.</summary>
    public int AcceptedOverHttp2 => Volatile.Read(ref _acceptedOverHttp2);

    public Uri Address { get; private set; } = null!;

    /// <param name="http2">Listen for HTTP/2 only (h2c), so that WebSockets arrive as extended CONNECT (RFC 8441).</param>
    public static async Task<EchoWebSocketBackend> StartAsync(bool http2 = false)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o =>
        {
            if (http2)
            {
                o.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http2;
            }
        }));
        builder.Services.AddRouting();
        var app = builder.Build();
        var backend = new EchoWebSocketBackend(app);
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero });
        app.Run(async context =>
        {
            if (!context.WebSockets.IsWebSocketRequest)
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                return;
            }

            Interlocked.Increment(ref backend._accepted);
            if (context.Request.Protocol == "HTTP/2")
            {
                Interlocked.Increment(ref backend._acceptedOverHttp2);
            }

            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            var buffer = new byte[64 * 1024];
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer, context.RequestAborted);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    await socket.CloseOutputAsync(result.CloseStatus ?? WebSocketCloseStatus.NormalClosure, result.CloseStatusDescription, context.RequestAborted);
                    return;
                }

                await socket.SendAsync(buffer.AsMemory(0, result.Count), result.MessageType, result.EndOfMessage, context.RequestAborted);
            }
        });
        await app.StartAsync();
        backend.Address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single() + "/");
        return backend;
    }

    /// <summary>
    /// A gateway configuration with one cluster, <c>ws</c>, on this backend, and <paramref name="routes"/> to it: each
    /// route's settings as given, its <c>ClusterId</c> set and, unless it has one, a catch-all <c>Match</c>.
    /// </summary>
    public System.Text.Json.Nodes.JsonObject Config(params (string Id, System.Text.Json.Nodes.JsonObject Route)[] routes)
    {
        var routesNode = new System.Text.Json.Nodes.JsonObject();
        foreach (var (id, route) in routes)
        {
            route["ClusterId"] = "ws";
            route["Match"] ??= new System.Text.Json.Nodes.JsonObject { ["Path"] = "/{**rest}" };
            routesNode[id] = route;
        }

        return new System.Text.Json.Nodes.JsonObject
        {
            ["ReverseProxy"] = new System.Text.Json.Nodes.JsonObject
            {
                ["Routes"] = routesNode,
                ["Clusters"] = new System.Text.Json.Nodes.JsonObject
                {
                    ["ws"] = new System.Text.Json.Nodes.JsonObject
                    {
                        ["Destinations"] = new System.Text.Json.Nodes.JsonObject { ["d"] = new System.Text.Json.Nodes.JsonObject { [nameof(Address)] = Address.ToString() } },
                    },
                },
            },
        };
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
