using Microsoft.Extensions.DependencyInjection.Extensions;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.ServiceDiscovery;
using YarpGateway.Configuration;

namespace YarpGateway.Discovery;

/// <summary>Registration for DNS discovery: YARP's DNS resolver, wrapped by <see cref="DnsDiscovery"/>.</summary>
internal static class DiscoveryExtensions
{
    public static IServiceCollection AddDnsDiscovery(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddReloadableOptions<DiscoveryOptions, DiscoveryOptionsValidator>(configuration, DiscoveryOptions.SectionName);
        services.AddSingleton<DiscoveryMetrics>();
        services.AddSingleton<IProxyConfigRule, DiscoveryRule>();

        // YARP's resolver, with no refresh of its own (DnsDiscovery schedules refreshes), is what DnsDiscovery wraps.
        new ServicesOnly(services).AddDnsDestinationResolver(dns => dns.RefreshPeriod = null);
        var yarps = services.Last(d => d.ServiceType == typeof(IDestinationResolver));
        services.RemoveAll<IDestinationResolver>();
        services.AddSingleton<IDestinationResolver>(sp => ActivatorUtilities.CreateInstance<DnsDiscovery>(sp, yarps.CreateInstance<IDestinationResolver>(sp)));
        return services;
    }

    /// <summary>Lets YARP's builder extensions register into the gateway's service collection.</summary>
    private sealed class ServicesOnly(IServiceCollection services) : IReverseProxyBuilder
    {
        public IServiceCollection Services { get; } = services;
    }
}
