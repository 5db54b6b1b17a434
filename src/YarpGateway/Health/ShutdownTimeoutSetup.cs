using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.Health;

/// <summary>
/// The host's shutdown timeout covers the drain delay and the in-flight timeout, so the host does not cut the drain short.
/// An edit of either applies to the next shutdown: the host reads its options' timeout when it stops, so the instance it
/// was given is kept up to date. Until 2026-12-07 it kept the sum the gateway started with, while the reload's line said
/// the new values applied and the drain's own line named them: a longer <c>Timeout</c> was cut at the old one.
/// </summary>
internal sealed class ShutdownTimeoutSetup : IConfigureOptions<HostOptions>, IDisposable
{
    private readonly ReloadableOptions<ShutdownOptions> _options;
    private readonly List<HostOptions> _configured = [];

    public ShutdownTimeoutSetup(ReloadableOptions<ShutdownOptions> options)
    {
        _options = options;
        options.Changed += OnOptionsChanged;
    }

    public void Configure(HostOptions hostOptions)
    {
        hostOptions.ShutdownTimeout = Total(_options.Current);
        lock (_configured)
        {
            _configured.Add(hostOptions);
        }
    }

    private void OnOptionsChanged(ShutdownOptions changed)
    {
        lock (_configured)
        {
            foreach (var hostOptions in _configured)
            {
                hostOptions.ShutdownTimeout = Total(changed);
            }
        }
    }

    private static TimeSpan Total(ShutdownOptions shutdown) => shutdown.DrainDelay + shutdown.Timeout;

    public void Dispose() => _options.Changed -= OnOptionsChanged;
}
