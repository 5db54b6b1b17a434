using Microsoft.Extensions.Options;
using YarpGateway.Endpoints;

namespace YarpGateway.ProxyProtocol;

/// <summary>Registration of the PROXY protocol reader on the Proxy endpoint, only when it is enabled.</summary>
internal static class ProxyProtocolExtensions
{
    /// <summary>After connection admission: a connection waits for admission before its header is read, and the header is the first bytes admission waits for.</summary>
    public static IServiceCollection AddProxyProtocol(this IServiceCollection services, IConfiguration configuration)
    {
        var section = configuration.GetSection(ProxyProtocolOptions.SectionName);
        services.AddOptions<ProxyProtocolOptions>().Bind(section);
        services.AddSingleton<IValidateOptions<ProxyProtocolOptions>, ProxyProtocolOptionsValidator>();
        if (bool.TryParse(section[nameof(ProxyProtocolOptions.Enabled)], out var enabled) && enabled)
        {
            services.AddSingleton<ProxyProtocolMetrics>();
            services.AddSingleton<ProxyProtocolReader>();
            services.AddSingleton<IProxyConnectionMiddleware>(sp => sp.GetRequiredService<ProxyProtocolReader>());
        }

        return services;
    }
}
