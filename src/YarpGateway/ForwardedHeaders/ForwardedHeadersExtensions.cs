using YarpGateway.Configuration;

namespace YarpGateway.ForwardedHeaders;

/// <summary>Registration and pipeline placement of the trusted client address.</summary>
internal static class ForwardedHeadersExtensions
{
    public static IServiceCollection AddGatewayForwardedHeaders(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddReloadableOptions<GatewayForwardedHeadersOptions, GatewayForwardedHeadersOptionsValidator>(configuration, GatewayForwardedHeadersOptions.SectionName);
        services.AddSingleton<TrustedProxies>();
        services.AddSingleton<Yarp.ReverseProxy.Transforms.Builder.ITransformProvider, RealIpTransformProvider>(); // X-Real-IP is the gateway's to say
        services.AddSingleton<Yarp.ReverseProxy.Transforms.Builder.ITransformProvider, ForwardedPrefixTransformProvider>(); // after RealIp's: PathRemovePrefix /api sends X-Forwarded-Prefix: /api
        services.AddSingleton<Yarp.ReverseProxy.Transforms.Builder.ITransformProvider, LocationTransformProvider>(); // a redirect to the backend's own address becomes /path
        services.AddSingleton<Yarp.ReverseProxy.Transforms.Builder.ITransformProvider, SetCookieTransformProvider>(); // and its cookies' Path and Domain are the client's
        return services;
    }

    /// <summary>
    /// Early on the proxy endpoint, before anything reads the client address: a client's own claims of an address are
    /// removed unless its peer is trusted, then, only when a peer is trusted, <c>X-Forwarded-For</c> is read
    /// (<see cref="TrustedProxies"/>, which follows reloads of <c>Gateway:ForwardedHeaders</c>).
    /// </summary>
    public static void UseGatewayForwardedHeaders(this WebApplication app)
        => app.Use(app.Services.GetRequiredService<TrustedProxies>().Middleware);
}
