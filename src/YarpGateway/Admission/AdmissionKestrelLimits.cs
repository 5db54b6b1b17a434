using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.Admission;

/// <summary>Applies <see cref="AdmissionOptions.MaxConcurrentConnections"/> and <see cref="AdmissionOptions.MaxConcurrentUpgradedConnections"/> to Kestrel (at start-up only).</summary>
internal sealed class AdmissionKestrelLimits(ReloadableOptions<AdmissionOptions> options) : IConfigureOptions<KestrelServerOptions>
{
    public void Configure(KestrelServerOptions kestrel)
    {
        var admission = options.Current; // Kestrel's limits are read once, at start-up
        kestrel.Limits.MaxConcurrentConnections = admission.MaxConcurrentConnections;
        kestrel.Limits.MaxConcurrentUpgradedConnections = admission.MaxConcurrentUpgradedConnections;
    }
}
