using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.Health;

/// <summary>
/// The host's shutdown timeout covers the drain delay and the in-flight timeout, so the host does
/// not cut the drain short. Read once at start-up: changing either needs a restart to affect this.
/// </summary>
internal sealed class ShutdownTimeoutSetup(ReloadableOptions<ShutdownOptions> options) : IConfigureOptions<HostOptions>
{
    public void Configure(HostOptions hostOptions)
    {
        var shutdown = options.Current;
        hostOptions.ShutdownTimeout = shutdown.DrainDelay + shutdown.Timeout;
    }
}
