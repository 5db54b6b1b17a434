using System.Threading.RateLimiting;

namespace YarpGateway.Resilience;

/// <summary>
/// The work the request's outer frame (<see cref="Endpoints.ProxyRequestFrame"/>) does when a proxied request ends, handed to
/// the retry middleware's frame, which waits for the request anyway (<see cref="RetryAttempt.TakeRequestEnd"/>): a second
/// frame waiting for the same request was about 150 bytes of each proxied request.
/// </summary>
internal interface IProxiedRequestEnd
{
    /// <summary>The request has ended: called once, at the end of the retry middleware's frame, before the request's task completes.</summary>
    void RequestEnded(HttpContext context, RateLimitLease? lease, long started);
}
