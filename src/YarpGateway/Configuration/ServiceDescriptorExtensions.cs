namespace YarpGateway.Configuration;

/// <summary>What features share to wrap a framework service they replace (YARP's active health policies, its DNS resolver, Data Protection, the json console format).</summary>
internal static class ServiceDescriptorExtensions
{
    /// <summary>The instance a registration describes, built the way the container would: its instance, its factory, or its type.</summary>
    public static T CreateInstance<T>(this ServiceDescriptor descriptor, IServiceProvider services)
        => (T)(descriptor.ImplementationInstance
            ?? descriptor.ImplementationFactory?.Invoke(services)
            ?? ActivatorUtilities.CreateInstance(services, descriptor.ImplementationType!));

    /// <summary>
    /// Replaces, in place, each (unkeyed) registration of <typeparamref name="T"/> that <paramref name="which"/> picks by
    /// a singleton that <paramref name="wrap"/> builds around it; the wrapper gets the original's construction, to call
    /// when it needs the original (at once, or on first use).
    /// </summary>
    public static void Decorate<T>(this IServiceCollection services, Func<ServiceDescriptor, bool> which, Func<IServiceProvider, Func<T>, T> wrap)
        where T : class
    {
        for (var i = 0; i < services.Count; i++)
        {
            var descriptor = services[i];
            if (descriptor.ServiceType == typeof(T) && !descriptor.IsKeyedService && which(descriptor))
            {
                services[i] = ServiceDescriptor.Singleton<T>(sp => wrap(sp, () => descriptor.CreateInstance<T>(sp)));
            }
        }
    }
}
