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

    /// <summary>Status answered on /health (YARP active health checks).</summary>
    public HttpStatusCode HealthStatus { get; set; } = HttpStatusCode.OK;

    public Uri Address { get; private set; } = null!;

    /// <summary>Requests to /hold wait for this (or for the client to go away).</summary>
    public TaskCompletionSource Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Requests currently waiting at the gate.</summary>
    public int Held => Volatile.Read(ref _held);

    private int _held;

    public static async Task<TestBackend> StartAsync(string name)
    {
        // No configuration sources: the gateway's appsettings.json sits in this folder too.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var backend = new TestBackend(name, app);
        app.Run(async context =>
        {
            // YARP appends the probe path to the destination address, which may end in '/'.
            if (context.Request.Path.Value?.TrimStart('/') == "health")
            {
                context.Response.StatusCode = (int)backend.HealthStatus;
                return;
            }

            Interlocked.Increment(ref backend._requests);
            if (context.Request.Path == "/hold")
            {
                Interlocked.Increment(ref backend._held);
                try
                {
                    await backend.Gate.Task.WaitAsync(context.RequestAborted);
                }
                finally
                {
                    Interlocked.Decrement(ref backend._held);
                }
            }

            await context.Response.WriteAsync(name, context.RequestAborted);
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        backend.Address = new Uri(address + "/");
        return backend;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
