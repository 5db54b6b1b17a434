using Microsoft.AspNetCore.Cors.Infrastructure;
using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.Cors;

/// <summary>Builds ASP.NET Core's CORS policies from <c>Gateway:Cors:Policies</c>; <c>Default</c> becomes the default policy.</summary>
internal sealed class CorsPolicySetup(IOptions<GatewayCorsOptions> gatewayOptions) : IConfigureOptions<CorsOptions>
{
    private static readonly string[] SimpleMethods = ["GET", "HEAD", "POST"];

    public void Configure(CorsOptions options)
    {
        foreach (var (name, settings) in gatewayOptions.ValueOrNew().Policies)
        {
            var policy = Build(settings);
            if (RoutePolicyNames.Is(name, RoutePolicyNames.Default))
            {
                options.AddDefaultPolicy(policy);
            }
            else
            {
                options.AddPolicy(name, policy);
            }
        }
    }

    internal static CorsPolicy Build(CorsPolicySettings settings)
    {
        var builder = new CorsPolicyBuilder();
        _ = settings.Origins.Contains("*") ? builder.AllowAnyOrigin() : builder.WithOrigins([.. settings.Origins]);
        _ = settings.Methods.Contains("*") ? builder.AllowAnyMethod() : builder.WithMethods(settings.Methods.Count == 0 ? SimpleMethods : [.. settings.Methods]);
        _ = settings.Headers.Contains("*") ? builder.AllowAnyHeader() : builder.WithHeaders([.. settings.Headers]);
        builder.WithExposedHeaders([.. settings.ExposedHeaders]);
        if (settings.Credentials)
        {
            builder.AllowCredentials();
        }

        if (settings.MaxAge is { } maxAge)
        {
            builder.SetPreflightMaxAge(maxAge);
        }

        return builder.Build();
    }
}
