using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Configuration;
using YarpGateway.Configuration;

namespace YarpGateway.RequestFiltering;

/// <summary>
/// Refuses, before admission and load balancing, requests the gateway will not forward for reasons of
/// the request itself, with the client error that says why. Without it YARP tried them and answered
/// 502 on its own, which passive health counted against a healthy destination: six plain CONNECTs
/// ejected one.
/// <list type="bullet">
/// <item>A plain <c>CONNECT</c> (a tunnel request): 405 with <c>Allow</c>; the gateway is no forward proxy.</item>
/// <item>An HTTP/2 extended CONNECT whose <c>:protocol</c> is not <c>websocket</c>: 501.</item>
/// <item><c>TRACE</c>: 405, as nginx does (it would echo the client's cookies back through the backend),
/// unless the route sets <c>Metadata: { "AllowTrace": "true" }</c>.</item>
/// </list>
/// A synchronous check per request; no allocation unless a request is refused.
/// </summary>
internal sealed class RequestFilter : IProxyConfigRule
{
    public const string AllowTraceKey = "AllowTrace";

    public IEnumerable<string> MetadataKeys => [AllowTraceKey];
    private const string Allowed = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS";

    public static Func<RequestDelegate, RequestDelegate> Middleware { get; } = static next => context =>
    {
        var method = context.Request.Method;
        if (HttpMethods.IsConnect(method))
        {
            var connect = context.Features.Get<IHttpExtendedConnectFeature>();
            if (connect?.IsExtendedConnect != true)
            {
                return RefuseAsync(context, StatusCodes.Status405MethodNotAllowed, "gateway: CONNECT (tunnelling) is not supported\n");
            }

            if (!string.Equals(connect.Protocol, "websocket", StringComparison.OrdinalIgnoreCase))
            {
                return RefuseAsync(context, StatusCodes.Status501NotImplemented, "gateway: only the websocket protocol is supported over extended CONNECT\n");
            }
        }
        else if (HttpMethods.IsTrace(method) && !AllowsTrace(context.GetReverseProxyFeature().Route.Config))
        {
            return RefuseAsync(context, StatusCodes.Status405MethodNotAllowed, "gateway: TRACE is not allowed on this route\n");
        }

        return next(context);
    };

    private static bool AllowsTrace(RouteConfig route)
        => route.Metadata is { } metadata && metadata.TryGetValue(AllowTraceKey, out var value) && bool.TryParse(value, out var allowed) && allowed;

    private static Task RefuseAsync(HttpContext context, int status, string body)
    {
        context.Response.StatusCode = status;
        if (status == StatusCodes.Status405MethodNotAllowed)
        {
            context.Response.Headers.Allow = Allowed;
        }

        return Endpoints.TextAnswer.WriteAsync(context, body, context.RequestAborted);
    }

    public void ValidateRoute(RouteConfig route, string key, ICollection<ConfigError> errors)
    {
        if (route.Metadata is { } metadata && metadata.TryGetValue(AllowTraceKey, out var value) && !bool.TryParse(value, out _))
        {
            errors.Add(new ConfigError($"{key}:Metadata:{AllowTraceKey}", $"'{value}' is not true or false."));
        }
    }

    public void ValidateCluster(ClusterConfig cluster, string key, ICollection<ConfigError> errors)
    {
    }
}
