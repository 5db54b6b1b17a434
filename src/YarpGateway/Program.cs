using YarpGateway;
using YarpGateway.Configuration;
using YarpGateway.Health;

RuntimeDefaults.Apply(); // before any socket exists
EarlySignals.HoldUntilStarted(); // a SIGHUP or SIGUSR1 while starting must not end the process
var checkOnly = ConfigCheck.Requested(args, out args); // --check: validate the configuration and exit, binding nothing

try
{
    // Content root is the binary's folder: the appsettings files are copied there, so the gateway
    // finds them whatever the working directory it is started from.
    // The host's own watching of the appsettings files is off: where a node's inotify instances are all taken, it
    // threw from CreateBuilder and the gateway never started. The gateway watches and re-reads them itself
    // (LastGoodJsonConfigurationSource), and falls back to checking them every 5 s.
    var builder = WebApplication.CreateBuilder(new WebApplicationOptions
    {
        Args = [.. args, "--hostBuilder:reloadConfigOnChange=false"],
        ContentRootPath = AppContext.BaseDirectory,
    });
    if (checkOnly)
    {
        ConfigCheck.Quiet(builder.Logging);
    }

    builder.AddGateway();

    await using var app = builder.Build();
    if (checkOnly)
    {
        return await ConfigCheck.RunAsync(app, Console.Out);
    }

    await app.UseGatewayAsync();
    await app.RunAsync();
    return 0;
}
catch (Exception ex) when (StartupErrors.TryDescribe(ex, out var message))
{
    await Console.Error.WriteLineAsync(message);
    return 1;
}
