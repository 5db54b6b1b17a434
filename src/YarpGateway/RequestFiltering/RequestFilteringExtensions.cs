using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.RequestFiltering;

/// <summary>Registration and proxy-pipeline wiring for the request filter.</summary>
internal static class RequestFilteringExtensions
{
    public static IServiceCollection AddRequestFiltering(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<RequestFilteringOptions>().Bind(configuration.GetSection(RequestFilteringOptions.SectionName));
        services.AddSingleton<RequestFilter>();
        services.AddSingleton<RequestBodyLimit>();
        services.AddSingleton<RefusedBodyDrain>();
        services.AddSingleton<IProxyConfigRule>(sp => sp.GetRequiredService<RequestFilter>());
        services.AddSingleton<IProxyConfigRule, HeaderEncodings>();
        services.AddSingleton<Yarp.ReverseProxy.Transforms.Builder.ITransformProvider, PathAsSentTransformProvider>(); // /a%3Bb, /a%2Fb and /caf%E9 reach the backend as sent
        services.AddSingleton<Yarp.ReverseProxy.Transforms.Builder.ITransformProvider, MergedSlashesTransformProvider>(); // PathRemovePrefix /api takes //api/x to /x
        services.AddSingleton<Yarp.ReverseProxy.Transforms.Builder.ITransformProvider, HeadersWithUnderscores>(); // X_Forwarded_For is not forwarded
        services.AddSingleton<Yarp.ReverseProxy.Transforms.Builder.ITransformProvider, ResponseTransferCodingTransformProvider>(); // before the response gate's and the retries'
        services.AddSingleton<Yarp.ReverseProxy.Transforms.Builder.ITransformProvider, NoContentResponseTransformProvider>(); // a backend's 204 with a Content-Length is not a 500

        services.AddSingleton<IConfigureOptions<KestrelServerOptions>, ContentLengthDigitsEncoding.KestrelSetup>(); // Content-Length: +5 gets 400
        services.AddSingleton<IConfigureOptions<KestrelServerOptions>, HeaderEncodings.KestrelSetup>(); // response header bytes unchanged
        AllowedHosts.CheckBeforeApplying(services); // an AllowedHosts entry with a port or a scheme refused, not every request 400
        return services;
    }

    /// <summary>First in the proxy pipeline: nothing refused here reaches admission, load balancing or a destination.</summary>
    public static IReverseProxyApplicationBuilder UseRequestFilter(this IReverseProxyApplicationBuilder proxy)
    {
        proxy.Use(RequestFilter.Middleware);
        proxy.Use(proxy.ApplicationServices.GetRequiredService<RequestBodyLimit>().Middleware);
        return proxy;
    }
}
