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
            // The status first: only a 5xx can be retried (validated), and nearly every response is not one, so it
            // costs them no feature lookup.
            if (transform.ProxyResponse is { } response
                && ResilienceSettings.IsRetryableStatus((int)response.StatusCode)
                && transform.HttpContext.Features.Get<RetryAttempt>() is { } attempt
                && attempt.TryReserveRetryForStatus((int)response.StatusCode))
            {
                transform.SuppressResponseBody = true;
            }

            return ValueTask.CompletedTask;
        });
}
