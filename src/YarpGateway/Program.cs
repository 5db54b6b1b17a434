using YarpGateway;
using YarpGateway.Configuration;
using YarpGateway.Health;

RuntimeDefaults.Apply(); // before any socket exists
EarlySignals.HoldUntilStarted(); // a SIGHUP or SIGUSR1 while starting must not end the process

try
{
    // Content root is the binary's folder: the appsettings files are copied there, so the gateway
    // finds them whatever the working directory it is started from.
    var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
    builder.AddGateway();

    await using var app = builder.Build();
    await app.UseGatewayAsync();
    await app.RunAsync();
    return 0;
}
catch (Exception ex) when (StartupErrors.TryDescribe(ex, out var message))
{
    await Console.Error.WriteLineAsync(message);
    return 1;
}
