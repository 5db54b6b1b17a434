using System.Net;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;
using YarpGateway.Configuration;

namespace YarpGateway.WebSockets;

/// <summary>
/// Adds to every route a response transform that, when the backend accepts a WebSocket the relay
/// carries, gives the upgraded response a content that hands the backend's stream to the relay
/// (<see cref="UpgradedContent.ForRelay"/>) when YARP opens it, and turns a 101
/// to a request that asked for no upgrade into a 502 (YARP would pass it on: the client got a 101,
/// an empty reply and no log). For every other response it is a status check.
/// </summary>
internal sealed class UpgradedResponseTransformProvider : RouteTransformProvider
{
    public override void Apply(TransformBuilderContext context)
        => context.AddResponseTransform(static transform =>
        {
            if (transform.ProxyResponse is not { } response)
            {
                return ValueTask.CompletedTask;
            }

            if (response.StatusCode == HttpStatusCode.SwitchingProtocols && !Endpoints.UpgradeRequest.Is(transform.HttpContext))
            {
                // Thrown from a response transform, YARP reports a response_headers error, disposes
                // the response (and with it the backend connection) and answers 502.
                throw new HttpRequestException(HttpRequestError.InvalidResponse, "The backend answered 101 Switching Protocols to a request that did not ask to upgrade.");
            }

            if ((response.StatusCode == HttpStatusCode.SwitchingProtocols
                    || (response.StatusCode == HttpStatusCode.OK && response.RequestMessage?.Method == HttpMethod.Connect))
                && transform.HttpContext.Features.Get<WebSocketRelay>() is { } relay)
            {
                response.Content = UpgradedContent.ForRelay(response.Content, relay, response);
            }

            return ValueTask.CompletedTask;
        });
}
