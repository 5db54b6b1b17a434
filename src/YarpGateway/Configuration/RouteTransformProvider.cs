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
}
