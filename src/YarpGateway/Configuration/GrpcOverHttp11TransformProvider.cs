using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;
using YarpGateway.Telemetry;

namespace YarpGateway.Configuration;

/// <summary>
/// A gRPC call (<c>application/grpc</c>, not gRPC-Web) sent to a cluster reached over HTTP/1.1 cannot work: gRPC
/// needs HTTP/2's trailers. YARP's default for a plain-http destination is HTTP/1.1 (HTTP/2 without TLS takes
/// <c>"HttpRequest": { "Version": "2", "VersionPolicy": "RequestVersionExact" }</c>), so this is the mistake a first
/// gRPC route makes. Tried with a Grpc.AspNetCore service: the client got "Bad gRPC response. HTTP status code:
/// 400" and the gateway logged nothing. The call is still forwarded (the backend's answer is the client's), and one
/// warning a minute at most names the route and cluster and the setting. A check of the content type of requests
/// with a body.
/// </summary>
internal sealed partial class GrpcOverHttp11TransformProvider(TimeProvider timeProvider, ILogger<GrpcOverHttp11TransformProvider> logger) : RouteTransformProvider
{
    private readonly OncePer _log = new(TimeSpan.FromMinutes(1), timeProvider);

    public override void Apply(TransformBuilderContext context)
    {
        var routeId = context.Route.RouteId;
        var clusterId = context.Cluster?.ClusterId ?? "-";
        context.AddRequestTransform(transform =>
        {
            var request = transform.ProxyRequest;
            if (request.Content is not null && IsGrpc(transform.HttpContext.Request.ContentType)
                && Endpoints.BackendHttpVersion.IsHttp11(transform.DestinationPrefix, request.Version, request.VersionPolicy)
                && _log.Now())
            {
                Log.GrpcOverHttp11(logger, routeId, clusterId);
            }

            return ValueTask.CompletedTask;
        });
    }

    // application/grpc and its +proto, +json forms; not application/grpc-web, which HTTP/1.1 carries.
    internal static bool IsGrpc(string? contentType)
        => contentType is not null
            && contentType.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase)
            && (contentType.Length == "application/grpc".Length || contentType["application/grpc".Length] is '+' or ';');

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "Route {RouteId} sends gRPC calls to cluster {ClusterId} over HTTP/1.1, which cannot carry them (gRPC needs HTTP/2's trailers); they fail at the backend. For backends that speak HTTP/2 without TLS, set the cluster's \"HttpRequest\": {{ \"Version\": \"2\", \"VersionPolicy\": \"RequestVersionExact\" }}. At most one such line a minute.", EventName = "GrpcOverHttp11")]
        public static partial void GrpcOverHttp11(ILogger logger, string routeId, string clusterId);
    }
}
