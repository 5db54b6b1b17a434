using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;
using YarpGateway.Configuration;

namespace YarpGateway.Admission;

/// <summary>
/// Adds to every route a request transform that gives back a new connection's first-request slot and accept-window place
/// (<see cref="FirstRequestGate"/>) when its first request goes to a backend: the gateway's part of taking the connection
/// on is done, and waiting for the backend's answer is not the gateway's load. Other requests find no gate (a feature
/// lookup).
/// </summary>
internal sealed class FirstRequestForwardedTransformProvider : RouteTransformProvider
{
    public override void Apply(TransformBuilderContext context)
        => context.AddRequestTransform(static transform =>
        {
            FirstRequestGate.ReleaseOnForward(transform.HttpContext);
            return ValueTask.CompletedTask;
        });
}
