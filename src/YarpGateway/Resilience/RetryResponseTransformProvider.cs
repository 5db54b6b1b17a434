using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;
using YarpGateway.Configuration;

namespace YarpGateway.Resilience;

/// <summary>
/// Adds to every route a response transform that holds back a retryable backend status (502, 503,
/// 504 by default) when a retry can follow: YARP then copies the status and headers but neither the
/// body nor anything to the client, so the retry starts from a clean, unstarted response.
/// </summary>
internal sealed class RetryResponseTransformProvider : RouteTransformProvider
{
    public override void Apply(TransformBuilderContext context)
        => context.AddResponseTransform(static transform =>
        {
            if (transform.ProxyResponse is { } response
                && transform.HttpContext.Features.Get<RetryAttempt>() is { } attempt
                && attempt.TryReserveRetryForStatus((int)response.StatusCode))
            {
                transform.SuppressResponseBody = true;
            }

            return ValueTask.CompletedTask;
        });
}
