using Microsoft.AspNetCore.OutputCaching;
using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.OutputCaching;

/// <summary>
/// ASP.NET Core's output cache, given its body limit and the configured policies. Its <c>SizeLimit</c> is not set: that
/// sizes only ASP.NET Core's own store, and the entries live in <see cref="OutputCacheMemoryStore"/>, which reads it itself.
/// </summary>
internal sealed class OutputCacheSetup(IOptions<GatewayOutputCacheOptions> gatewayOptions) : IConfigureOptions<OutputCacheOptions>
{
    public void Configure(OutputCacheOptions options)
    {
        var settings = gatewayOptions.ValueOrNew();
        options.MaximumBodySize = settings.MaximumBodySize;
        foreach (var (name, policy) in settings.Policies)
        {
            var p = policy ?? new OutputCachePolicySettings();
            options.AddPolicy(name, builder =>
            {
                builder.Expire(p.Duration).SetLocking(p.Locking).AddPolicy<BackendCacheControlPolicy>();
                if (p.VaryByQuery.Count > 0)
                {
                    builder.SetVaryByQuery([.. p.VaryByQuery]);
                }

                if (p.VaryByHeader.Count > 0)
                {
                    builder.SetVaryByHeader([.. p.VaryByHeader]);
                }
            });
        }
    }
}
