using System.Net;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;
using YarpGateway.Configuration;

namespace YarpGateway.RequestFiltering;

/// <summary>
/// A backend's <c>204 No Content</c> goes to the client without a <c>Content-Length</c>, and its <c>205 Reset
/// Content</c> with <c>Content-Length: 0</c> and no content, whatever the backend sent after either (RFC 9110: neither
/// has content). Tried with backends that sent a body with them:
/// <list type="bullet">
/// <item>204: HttpClient reads no content, but YARP copied the <c>Content-Length: 5</c>, and Kestrel then failed the
/// response for the 5 bytes never written: the client got 500, and the log an unhandled exception per request.</item>
/// <item>205: Kestrel refused to write the body, and the client got 502 with nothing logged or counted.</item>
/// </list>
/// One status comparison per response.
/// </summary>
internal sealed class NoContentResponseTransformProvider : RouteTransformProvider
{
    public override void Apply(TransformBuilderContext context) => context.AddResponseTransform(static transform =>
    {
        switch (transform.ProxyResponse?.StatusCode)
        {
            case HttpStatusCode.NoContent:
                transform.HttpContext.Response.Headers.ContentLength = null;
                break;
            case HttpStatusCode.ResetContent:
                transform.HttpContext.Response.Headers.ContentLength = 0;
                transform.SuppressResponseBody = true;
                break;
        }

        return ValueTask.CompletedTask;
    });
}
