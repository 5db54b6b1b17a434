using Microsoft.Extensions.Options;

namespace YarpGateway.Demo;

/// <summary>
/// Two tiny echo servers in the gateway's own process, so that a fresh clone proxies something
/// at once: each answers every request with its own name. Development only (see appsettings).
/// </summary>
internal sealed partial class DemoBackends(IOptions<DemoBackendsOptions> options, ILogger<DemoBackends> logger) : IHostedService, IAsyncDisposable
{
    internal static readonly (string Name, int Port)[] Backends = [("demo-a", 5101), ("demo-b", 5102)];

    private readonly List<WebApplication> _apps = [];

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!options.Value.Enabled)
        {
            return;
        }

        foreach (var (name, port) in Backends)
        {
            // An empty builder: no configuration sources, so the gateway's own Kestrel:Endpoints
            // (in appsettings.json next to the binary) are not bound a second time.
            var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
            builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel => kestrel.Listen(System.Net.IPAddress.Loopback, port));
            var app = builder.Build();
            app.Run(context =>
            {
                context.Response.ContentType = "text/plain; charset=utf-8";
                return context.Response.WriteAsync($"{name} {context.Request.Method} {context.Request.Path}{context.Request.QueryString}\n", context.RequestAborted);
            });
            await app.StartAsync(cancellationToken);
            _apps.Add(app);
            Log.Started(logger, name, port);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        foreach (var app in _apps)
        {
            await app.StopAsync(cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var app in _apps)
        {
            await app.DisposeAsync();
        }

        _apps.Clear();
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Demo backend {Name} listening on http://127.0.0.1:{Port} (Gateway:DemoBackends:Enabled).", EventName = "DemoBackendStarted")]
        public static partial void Started(ILogger logger, string name, int port);
    }
}
