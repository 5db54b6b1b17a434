using Microsoft.AspNetCore.Http.Features;
using YarpGateway.Telemetry;

namespace YarpGateway.RequestFiltering;

/// <summary>
/// <c>OPTIONS *</c> asks about the server, not a resource (RFC 9110 §9.3.7: a "ping"). The gateway answers it
/// itself, 200 with an empty body, as Go's <c>net/http</c> server does: Kestrel gives it an empty path, and it
/// went to a catch-all route's backend as <c>OPTIONS /</c>, a question about the backend's root resource (tried on
/// the Release build; a backend cannot be asked <c>*</c> through HttpClient). nginx answers 400. Synchronous; a
/// comparison per request, and a feature lookup only for <c>OPTIONS</c> with an empty path.
/// </summary>
internal static class AsteriskOptions
{
    /// <summary>The answer; counted in <paramref name="metrics"/> (<c>gateway.requests.not_proxied</c>).</summary>
    public static Func<RequestDelegate, RequestDelegate> Middleware(RequestMetrics metrics) => next => context =>
    {
        var request = context.Request;
        if (!request.Path.HasValue && HttpMethods.IsOptions(request.Method)
            && context.Features.Get<IHttpRequestFeature>()?.RawTarget == "*")
        {
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentLength = 0;
            metrics.NotProxied(StatusCodes.Status200OK);
            return Task.CompletedTask;
        }

        return next(context);
    };
}
