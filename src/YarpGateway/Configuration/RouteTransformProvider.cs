using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Transforms.Builder;

namespace YarpGateway.Configuration;

/// <summary>
/// A transform provider that only adds the gateway's own transforms to every route: it reads no transform
/// values of its own from the configuration, so there is nothing of a route or cluster for it to validate.
/// </summary>
internal abstract class RouteTransformProvider : ITransformProvider
{
    public void ValidateRoute(TransformRouteValidationContext context)
    {
    }

    public void ValidateCluster(TransformClusterValidationContext context)
    {
    }

    public abstract void Apply(TransformBuilderContext context);

    /// <summary>The value of <paramref name="key"/> in one of a route's transforms (keys in any case, as YARP reads them); null without it.</summary>
    internal static string? ValueOf(IReadOnlyDictionary<string, string> transform, string key)
    {
        foreach (var (name, value) in transform)
        {
            if (name.Equals(key, StringComparison.OrdinalIgnoreCase))
            {
                return value;
            }
        }

        return null;
    }

    /// <summary>The value of the route's last transform with <paramref name="key"/> (<c>PathRemovePrefix</c>, say); null when none has it.</summary>
    internal static string? LastValueOf(RouteConfig? route, string key)
    {
        string? last = null;
        foreach (var transform in route?.Transforms ?? [])
        {
            last = ValueOf(transform, key) ?? last;
        }

        return last;
    }
}
