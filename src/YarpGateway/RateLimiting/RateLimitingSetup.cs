using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace YarpGateway.RateLimiting;

/// <summary>
/// ASP.NET Core's rate-limiting middleware, given the configured policies: 429 with <c>Retry-After</c>
/// for a refused request (queued ones wait, oldest first, up to the policy's QueueLimit).
/// </summary>
internal sealed class RateLimitingSetup(RateLimitPolicies policies, RateLimitRejections rejections) : IConfigureOptions<RateLimiterOptions>
{
    public void Configure(RateLimiterOptions options)
    {
        options.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
        options.OnRejected = (context, _) =>
        {
            rejections.Rejected(context.HttpContext, context.Lease);
            return ValueTask.CompletedTask;
        };
        foreach (var policy in policies.All.Values)
        {
            options.AddPolicy(policy.Name, policy.Partition);
        }
    }
}
