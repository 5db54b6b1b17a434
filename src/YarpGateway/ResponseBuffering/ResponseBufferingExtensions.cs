namespace YarpGateway.ResponseBuffering;

/// <summary>Registration of the slow-client gate for proxied response bodies.</summary>
internal static class ResponseBufferingExtensions
{
    public static IServiceCollection AddResponseBuffering(this IServiceCollection services)
    {
        services.AddSingleton<ResponseBufferingCounters>();
        services.AddSingleton<Yarp.ReverseProxy.Transforms.Builder.ITransformProvider, ResponseGateTransformProvider>();
        return services;
    }
}
