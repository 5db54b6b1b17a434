using System.Net;
using global::Grpc.Core;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace YarpGateway.Tests.Grpc;

/// <summary>A real gRPC service (Grpc.AspNetCore) on 127.0.0.1, port 0, speaking HTTP/2 without TLS (h2c).</summary>
internal sealed class GrpcBackend : IAsyncDisposable
{
    private readonly WebApplication _app;

    private GrpcBackend(WebApplication app, Uri address, System.Collections.Concurrent.ConcurrentQueue<string> callers)
    {
        _app = app;
        Address = address;
        Callers = callers;
    }

    public Uri Address { get; }

    /// <summary>What <c>/busy/Answer</c> waits for after its answer, until the test releases it or the call is reset.</summary>
    public TaskCompletionSource Busy { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The <c>x-caller</c> metadata of each unary call the service received, in order.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> Callers { get; }

    public static async Task<GrpcBackend> StartAsync()
    {
        // No configuration sources: the gateway's appsettings.json sits in this folder too.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http2));
        builder.Services.AddRouting();
        builder.Services.AddGrpc();
        var callers = new System.Collections.Concurrent.ConcurrentQueue<string>();
        builder.Services.AddSingleton(callers);
        var app = builder.Build();
        app.UseRouting();
        app.MapGrpcService<EchoService>();
        GrpcBackend? backend = null;

        // A service that answers (a status, InvalidArgument, in trailers; after a message for /busy/Stream) before it has
        // read the request's stream, and is then still busy: its server resets the stream only when the handler ends,
        // not after the answer.
        foreach (var (path, messageFirst) in new[] { ("/busy/Answer", false), ("/busy/Stream", true) })
        {
            app.MapPost(path, async context =>
            {
                context.Response.ContentType = "application/grpc";
                context.Response.AppendTrailer("grpc-status", "3");
                if (messageFirst)
                {
                    await context.Response.Body.WriteAsync(new byte[] { 0, 0, 0, 0, 0 }, context.RequestAborted); // an empty message
                }

                await context.Response.CompleteAsync();
                await backend!.Busy.Task.WaitAsync(context.RequestAborted);
            });
        }

        await app.StartAsync();
        var address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single().Replace("[::]", "127.0.0.1", StringComparison.Ordinal) + "/");
        return backend = new GrpcBackend(app, address, callers);
    }

    public async ValueTask DisposeAsync()
    {
        Busy.TrySetResult();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private sealed class EchoService(System.Collections.Concurrent.ConcurrentQueue<string> callers) : Echo.EchoBase
    {
        public override async Task<EchoReply> Unary(EchoRequest request, ServerCallContext context)
        {
            callers.Enqueue(context.RequestHeaders.GetValue("x-caller") ?? "");
            if (request.DelayMs > 0)
            {
                await Task.Delay(request.DelayMs, context.CancellationToken);
            }

            if (request.Text == "missing")
            {
                throw new RpcException(new global::Grpc.Core.Status(StatusCode.NotFound, "no such thing"), new Metadata { { "x-why", "asked for it" } });
            }

            context.ResponseTrailers.Add("x-served-by", "grpc-backend");
            return new EchoReply { Text = request.Text, Bytes = request.Payload.Length };
        }

        public override async Task ServerStream(EchoRequest request, IServerStreamWriter<EchoReply> responseStream, ServerCallContext context)
        {
            for (var i = 0; i < request.Count; i++)
            {
                await responseStream.WriteAsync(new EchoReply { Text = request.Text, Index = i }, context.CancellationToken);
                if (request.DelayMs > 0)
                {
                    await Task.Delay(request.DelayMs, context.CancellationToken);
                }
            }
        }

        public override async Task<EchoReply> ClientStream(IAsyncStreamReader<EchoRequest> requestStream, ServerCallContext context)
        {
            var count = 0;
            long bytes = 0;
            await foreach (var request in requestStream.ReadAllAsync(context.CancellationToken))
            {
                if (request.Text == "reject")
                {
                    // Refused at the first bad message, the rest of the stream unread (a validation error).
                    throw new RpcException(new global::Grpc.Core.Status(StatusCode.InvalidArgument, "rejected"));
                }

                count++;
                bytes += request.Payload.Length;
            }

            return new EchoReply { Index = count, Bytes = bytes };
        }

        public override async Task Duplex(IAsyncStreamReader<EchoRequest> requestStream, IServerStreamWriter<EchoReply> responseStream, ServerCallContext context)
        {
            var index = 0;
            await foreach (var request in requestStream.ReadAllAsync(context.CancellationToken))
            {
                await responseStream.WriteAsync(new EchoReply { Text = request.Text, Index = index++ }, context.CancellationToken);
            }
        }
    }
}
