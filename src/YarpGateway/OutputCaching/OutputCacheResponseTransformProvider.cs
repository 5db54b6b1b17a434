using Microsoft.AspNetCore.OutputCaching;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;
using YarpGateway.Configuration;

namespace YarpGateway.OutputCaching;

/// <summary>
/// On routes with an output-cache policy, judges the backend's response headers (<see cref="BackendCacheControlPolicy.Judge"/>)
/// once YARP has copied them and before it copies the body: ASP.NET Core's cache fixes an entry's lifetime, and
/// whether to keep buffering it, at the body's first write, before its policies see the finished response.
/// </summary>
internal sealed class OutputCacheResponseTransformProvider(BackendCacheControlPolicy policy) : RouteTransformProvider
{
    public override void Apply(TransformBuilderContext context)
    {
        if (string.IsNullOrEmpty(context.Route.OutputCachePolicy))
        {
            return;
        }

        context.AddResponseTransform(transform =>
        {
            // Only a 200 is ever stored; a failed attempt's headers must not set the lifetime of the retry's response.
            if (transform.ProxyResponse?.StatusCode == System.Net.HttpStatusCode.OK && transform.HttpContext.Features.Get<IOutputCacheFeature>() is { } cache)
            {
                policy.Judge(cache.Context);
            }

            return ValueTask.CompletedTask;
        });
    }
}
