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

        // ASP.NET Core's default keys paths without regard to case: /Case.txt's answer was served for /case.txt, another file
        // to a backend whose paths have case (most do), as nginx's and Varnish's keys do.
        options.UseCaseSensitivePaths = true;
        foreach (var name in settings.Policies.Keys)
        {
            // The policy's own settings reload (ReloadableOutputCachePolicy); the names are ASP.NET Core's, read once.
            options.AddPolicy(name, builder => builder.AddPolicy<ReloadableOutputCachePolicy>().AddPolicy<BackendCacheControlPolicy>());
        }
    }
}
