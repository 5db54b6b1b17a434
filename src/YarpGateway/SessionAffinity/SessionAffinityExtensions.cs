using Microsoft.AspNetCore.DataProtection;
using YarpGateway.Configuration;

namespace YarpGateway.SessionAffinity;

/// <summary>Registration of what the gateway changes about YARP's session affinity.</summary>
internal static class SessionAffinityExtensions
{
    private const string DataProtectionStartupService = "Microsoft.AspNetCore.DataProtection.Internal.DataProtectionHostedService";

    /// <summary>
    /// After <c>AddReverseProxy</c>. YARP brings ASP.NET Core Data Protection for its encrypted
    /// affinity policies (<c>Cookie</c>, <c>CustomHeader</c>), and Data Protection made its key ring at
    /// every start, used or not: in a pod (read-only file system) three warnings each time, about keys
    /// that would be lost when the process exits and that are not encrypted at rest. Now the key ring
    /// is made when an encrypted affinity value is first set or read, so those warnings come only
    /// where they apply.
    /// </summary>
    public static IServiceCollection AddSessionAffinityDataProtectionOnFirstUse(this IServiceCollection services)
    {
        // Data Protection's start-up service only loads the key ring early.
        if (services.FirstOrDefault(static d => d.ServiceType == typeof(IHostedService) && d.ImplementationType?.FullName == DataProtectionStartupService) is { } startup)
        {
            services.Remove(startup);
        }

        services.Decorate<IDataProtectionProvider>(static _ => true, static (_, inner) => new LazyDataProtectionProvider(inner));
        return services;
    }

    /// <summary>YARP's session affinity lines, one per request, once a second per kind instead (<see cref="SessionAffinityLogThrottle"/>).</summary>
    public static IServiceCollection AddSessionAffinityLogThrottle(this IServiceCollection services)
    {
        services.AddSingleton<ILoggerProvider, SessionAffinityLogThrottle>();
        services.AddSingleton<Microsoft.Extensions.Options.IConfigureOptions<LoggerFilterOptions>, SessionAffinityLogThrottle.FilterSetup>();
        return services;
    }
}
