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
/// <item>On a route whose <c>Match.Methods</c> lists its methods, a method override (<c>X-HTTP-Method-Override</c>,
/// <c>X-HTTP-Method</c>, <c>X-Method-Override</c>) naming one it does not list: 405 with the route's methods in
/// <c>Allow</c>. Backends that honour them on a POST (ASP.NET Core's <c>UseHttpMethodOverride</c>, Express's
/// <c>method-override</c>, Rails' <c>Rack::MethodOverride</c>) ran a <c>DELETE</c> that came through a route open to
/// <c>GET, POST</c>, past the policies of the route that takes <c>DELETE</c>. A route with no <c>Methods</c> passes them.</item>
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

        if (MethodOverride(context.Request.Headers) is { } overridden
            && context.GetReverseProxyFeature().Route.Config.Match.Methods is { Count: > 0 } methods
            && !methods.Contains(overridden, StringComparer.OrdinalIgnoreCase))
        {
            context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            context.Response.Headers.Allow = string.Join(", ", methods);
            return Endpoints.TextAnswer.WriteAsync(context, $"gateway: a method override to {Printable(overridden)} on a route that does not take that method\n", context.RequestAborted);
        }

        return next(context);
    };

    /// <summary>The headers that backends read a POST's real method from.</summary>
    internal static readonly string[] MethodOverrideHeaderNames = ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"];

    /// <summary>The method a request's override header names, or null when it carries none.</summary>
    internal static string? MethodOverride(IHeaderDictionary headers)
    {
        foreach (var name in MethodOverrideHeaderNames)
        {
            if (headers.TryGetValue(name, out var value) && value.Count > 0)
            {
                return value.ToString().Trim();
            }
        }

        return null;
    }

    private static string Printable(string method) => method.Length <= 20 && method.All(char.IsAsciiLetter) ? method : "another method";

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
