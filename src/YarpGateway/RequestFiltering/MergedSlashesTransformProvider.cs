using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;
using YarpGateway.Configuration;

namespace YarpGateway.RequestFiltering;

/// <summary>
/// A route's <c>PathRemovePrefix</c> and <c>PathPrefix</c> compute the backend's path from the path routing matched, with
/// runs of slashes merged (<see cref="RoutedWithMergedSlashes"/>), as nginx's <c>proxy_pass</c> with a URI computes its
/// path from the merged one. Before, they read the path as sent: <c>//api/x</c> took the <c>/api/{**rest}</c> route and
/// <c>PathRemovePrefix /api</c>, which did not find its prefix in <c>//api/x</c>, sent it on unchanged, to a backend that
/// knows no <c>/api</c>. A <c>PathPattern</c> already takes routing's values; a route without a path transform still sends
/// the path as it came. Added first, before the route's own transforms, only on routes with one of the two.
/// </summary>
internal sealed class MergedSlashesTransformProvider : RouteTransformProvider
{
    public override void Apply(TransformBuilderContext context)
    {
        if (LastValueOf(context.Route, "PathRemovePrefix") is not null || LastValueOf(context.Route, "PathPrefix") is not null)
        {
            context.RequestTransforms.Insert(0, new RequestFuncTransform(Merge));
        }
    }

    private static ValueTask Merge(RequestTransformContext transform)
    {
        transform.Path = RoutedWithMergedSlashes.Merged(transform.Path);
        return ValueTask.CompletedTask;
    }
}
