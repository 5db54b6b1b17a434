using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Transforms.Builder;
using YarpGateway.Configuration;
using YarpGateway.Endpoints;

namespace YarpGateway.Admission;

/// <summary>Registration and pipeline wiring for admission control.</summary>
internal static class AdmissionExtensions
{
    public static IServiceCollection AddAdmission(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddReloadableOptions<AdmissionOptions, AdmissionOptionsValidator>(configuration, AdmissionOptions.SectionName);
        services.AddSingleton<IConfigureOptions<KestrelServerOptions>, AdmissionKestrelLimits>();
        services.AddSingleton<IProxyConfigRule, AdmissionMetadataRule>();

        services.AddSingleton<AdmissionMetrics>();
        services.AddSingleton<Telemetry.IKnownSeries>(sp => sp.GetRequiredService<AdmissionMetrics>());
        services.AddSingleton<AdmissionLimits>();
        services.AddSingleton<IConfigChangeListener>(sp => sp.GetRequiredService<AdmissionLimits>());
        services.AddSingleton<RequestAdmission>();
        services.AddSingleton<UpgradeAdmission>();
        services.AddSingleton<EstablishedRequests>(); // counted by ProxyRequestFrame, read by the adaptive connection rate
        services.AddSingleton<ConnectionAdmission>();
        services.AddSingleton<ITransformProvider, FirstRequestForwardedTransformProvider>(); // a slow backend does not hold a new connection's place

        // Kestrel asks the transports registered last first: this one wraps the socket transport.
        services.AddSingleton<IConnectionListenerFactory>(sp => new PacedAcceptListenerFactory(
            ActivatorUtilities.CreateInstance<SocketTransportFactory>(sp), sp.GetRequiredService<ConnectionAdmission>(), sp.GetRequiredService<OpenConnectionLimit>(),
            sp.GetRequiredService<Memory.MemoryPressure>(), sp.GetRequiredService<GatewayListeners>(), sp.GetRequiredService<ProxyListenQueue>(), sp.GetRequiredService<ILogger<PacedAcceptListenerFactory>>()));
        services.AddSingleton<IProxyConnectionMiddleware>(sp => sp.GetRequiredService<ConnectionAdmission>());
        return services;
    }

    /// <summary>
    /// The open connections per client address: after <see cref="AddAdmission"/> and the PROXY protocol's reader, so that it
    /// counts the client's address, not a load balancer's.
    /// </summary>
    public static IServiceCollection AddClientAddressConnectionLimit(this IServiceCollection services)
    {
        services.AddSingleton<ClientAddressConnectionLimit>();
        services.AddSingleton<IProxyConnectionMiddleware>(sp => sp.GetRequiredService<ClientAddressConnectionLimit>());
        return services;
    }

    /// <summary>First in the proxy pipeline: the route's, then the cluster's limit.</summary>
    public static IReverseProxyApplicationBuilder UseRouteAndClusterAdmission(this IReverseProxyApplicationBuilder proxy)
    {
        var requests = proxy.ApplicationServices.GetRequiredService<RequestAdmission>();
        proxy.Use(next => context => requests.AdmitRouteAndClusterAsync(context, next));
        return proxy;
    }
}
