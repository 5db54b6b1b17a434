using System.Net;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace YarpGateway.WebSockets;

/// <summary>
/// Adds to every route a response transform that, when the backend accepts a WebSocket the relay
/// carries, hands YARP the backend stream through a <see cref="BackendGateStream"/>. For every other
/// response it is a status check.
/// </summary>
internal sealed class BackendGateTransformProvider : ITransformProvider
{
    public void ValidateRoute(TransformRouteValidationContext context)
    {
    }

    public void ValidateCluster(TransformClusterValidationContext context)
    {
    }

    public void Apply(TransformBuilderContext context)
        => context.AddResponseTransform(static transform =>
        {
            if (transform.ProxyResponse is { } response
                && (response.StatusCode == HttpStatusCode.SwitchingProtocols
                    || (response.StatusCode == HttpStatusCode.OK && response.RequestMessage?.Method == HttpMethod.Connect))
                && transform.HttpContext.Features.Get<WebSocketRelay>() is { } relay)
            {
                response.Content = UpgradedContent.Gated(response.Content, relay, response);
            }

            return ValueTask.CompletedTask;
        });
}
