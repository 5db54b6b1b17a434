using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.ForwardedHeaders;

/// <summary>Registration and pipeline placement of the trusted client address.</summary>
internal static class ForwardedHeadersExtensions
{
    public static IServiceCollection AddGatewayForwardedHeaders(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<GatewayForwardedHeadersOptions>().Bind(configuration.GetSection(GatewayForwardedHeadersOptions.SectionName));
        services.AddSingleton<IValidateOptions<GatewayForwardedHeadersOptions>, GatewayForwardedHeadersOptionsValidator>();
        services.AddSingleton<IConfigureOptions<ForwardedHeadersOptions>, ForwardedHeadersSetup>();
        services.AddSingleton<Yarp.ReverseProxy.Transforms.Builder.ITransformProvider, RealIpTransformProvider>(); // X-Real-IP is the gateway's to say
        services.AddSingleton<Yarp.ReverseProxy.Transforms.Builder.ITransformProvider, LocationTransformProvider>(); // a redirect to the backend's own address becomes /path
        return services;
    }

    /// <summary>
    /// Early on the proxy endpoint, before anything reads the client address: a client's own claims of an address are
    /// removed unless its peer is trusted, then, only when a peer is trusted, <c>X-Forwarded-For</c> is read.
    /// </summary>
    public static void UseGatewayForwardedHeaders(this WebApplication app)
    {
        var enabled = app.Services.GetRequiredService<IOptions<GatewayForwardedHeadersOptions>>().ValueOrNew().Enabled;
        // ASP.NET Core's options hold the trusted peers as ForwardedHeadersSetup configured them; its defaults trust
        // loopback, so they count only when the gateway trusts someone.
        app.Use(ClientAddressClaims.Middleware(enabled ? app.Services.GetRequiredService<IOptions<ForwardedHeadersOptions>>().Value : null));
        if (enabled)
        {
            app.UseForwardedHeaders();
            app.Use(WithoutOriginalFor);
        }
    }

    /// <summary>
    /// ASP.NET Core's forwarded-headers middleware keeps the peer it replaced (a trusted proxy's address and port) in
    /// <c>X-Original-For</c>, a request header that YARP then sent to every backend: its own bookkeeping, not something
    /// a backend was told before (nginx's realip module adds nothing of the kind), and an internal address.
    /// </summary>
    private static RequestDelegate WithoutOriginalFor(RequestDelegate next) => context =>
    {
        context.Request.Headers.Remove(Microsoft.AspNetCore.HttpOverrides.ForwardedHeadersDefaults.XOriginalForHeaderName);
        return next(context);
    };
}
