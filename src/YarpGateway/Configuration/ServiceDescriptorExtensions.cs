namespace YarpGateway.Configuration;

/// <summary>What features share to wrap a framework service they replace (YARP's active health policies, its DNS resolver).</summary>
internal static class ServiceDescriptorExtensions
{
    /// <summary>The instance a registration describes, built the way the container would: its instance, its factory, or its type.</summary>
    public static T CreateInstance<T>(this ServiceDescriptor descriptor, IServiceProvider services)
        => (T)(descriptor.ImplementationInstance
            ?? descriptor.ImplementationFactory?.Invoke(services)
            ?? ActivatorUtilities.CreateInstance(services, descriptor.ImplementationType!));
}
