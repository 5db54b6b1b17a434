using YarpGateway.Configuration;
using YarpGateway.Telemetry;

namespace YarpGateway.Memory;

/// <summary>Registration for giving memory back after a drop in connections (<see cref="MemoryOptions"/>).</summary>
internal static class MemoryExtensions
{
    public static IServiceCollection AddMemoryReturn(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddReloadableOptions<MemoryOptions, MemoryOptionsValidator>(configuration, MemoryOptions.SectionName);
        services.AddSingleton<MemoryMetrics>();
        services.AddSingleton<IKnownSeries>(sp => sp.GetRequiredService<MemoryMetrics>());
        services.AddSingleton<MemoryReturn>();
        services.AddHostedService(sp => sp.GetRequiredService<MemoryReturn>());
        services.AddSingleton<MemoryPressure>();
        services.AddHostedService(sp => sp.GetRequiredService<MemoryPressure>());
        return services;
    }
}
