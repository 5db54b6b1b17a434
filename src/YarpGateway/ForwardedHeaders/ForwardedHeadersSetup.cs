using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.ForwardedHeaders;

/// <summary>ASP.NET Core's forwarded-headers middleware, trusting exactly the configured peers for <c>X-Forwarded-For</c>.</summary>
internal sealed class ForwardedHeadersSetup(IOptions<GatewayForwardedHeadersOptions> gatewayOptions) : IConfigureOptions<ForwardedHeadersOptions>
{
    public void Configure(ForwardedHeadersOptions options)
    {
        var settings = gatewayOptions.ValueOrNew();
        options.ForwardedHeaders = Microsoft.AspNetCore.HttpOverrides.ForwardedHeaders.XForwardedFor;
        options.ForwardLimit = settings.ForwardLimit;
        options.KnownIPNetworks.Clear();
        options.KnownProxies.Clear();
        foreach (var network in settings.KnownNetworks)
        {
            options.KnownIPNetworks.Add(System.Net.IPNetwork.Parse(network));
        }

        foreach (var proxy in settings.KnownProxies)
        {
            options.KnownProxies.Add(IPAddress.Parse(proxy));
        }
    }
}
