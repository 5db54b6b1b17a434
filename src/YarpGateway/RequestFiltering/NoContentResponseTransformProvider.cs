using System.Net;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace YarpGateway.RequestFiltering;

/// <summary>
/// A backend's <c>204 No Content</c> goes to the client without a <c>Content-Length</c>, as from nginx. A 204 has no
/// content whatever its headers say (HttpClient reads none), but YARP copied a backend's <c>Content-Length: 5</c>,
/// and Kestrel then failed the response for the 5 bytes never written: the client got 500, and the log an
/// unhandled exception per request (tried with a backend that sent a body with its 204). RFC 9110 says a 204 has
/// no <c>Content-Length</c>. One status comparison per response.
/// </summary>
internal sealed class NoContentResponseTransformProvider : ITransformProvider
{
    public void ValidateRoute(TransformRouteValidationContext context)
    {
    }

    public void ValidateCluster(TransformClusterValidationContext context)
    {
    }

    public void Apply(TransformBuilderContext context) => context.AddResponseTransform(static transform =>
    {
        if (transform.ProxyResponse?.StatusCode == HttpStatusCode.NoContent)
        {
            transform.HttpContext.Response.Headers.ContentLength = null;
        }

        return ValueTask.CompletedTask;
    });
}
