using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;
using YarpGateway.Configuration;

namespace YarpGateway.LoadBalancing;

/// <summary>Registration and proxy-pipeline wiring for the weighted load-balancing feature.</summary>
internal static class LoadBalancingExtensions
{
    public static IServiceCollection AddWeightedLoadBalancing(this IServiceCollection services)
    {
        services.AddSingleton<DestinationMetrics>();
        services.AddSingleton<WeightedScheduleCache>();
        services.AddSingleton<DrainedDestinationFilter>();
        services.AddSingleton<IProxyConfigRule, DestinationWeightRule>();
        services.AddSingleton<ILoadBalancingPolicy, WeightedRoundRobinPolicy>();
        services.AddSingleton<ILoadBalancingPolicy, WeightedLeastRequestsPolicy>();
        return services;
    }

    /// <summary>Drops weight-0 destinations from the request's candidates; goes before affinity and load balancing.</summary>
    public static IReverseProxyApplicationBuilder UseDrainedDestinationFilter(this IReverseProxyApplicationBuilder proxy)
    {
        var filter = proxy.ApplicationServices.GetRequiredService<DrainedDestinationFilter>();
        proxy.Use(next => context =>
        {
            var feature = context.GetReverseProxyFeature();
            feature.AvailableDestinations = filter.Filter(feature.Route.Cluster!, feature.AvailableDestinations);
            return next(context);
        });
        return proxy;
    }
}
