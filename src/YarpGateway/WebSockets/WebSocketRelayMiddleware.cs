using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Net.Http.Headers;
using Yarp.ReverseProxy.Configuration;
using YarpGateway.Configuration;

namespace YarpGateway.WebSockets;

/// <summary>
/// First in the proxy pipeline for WebSocket requests: checks the handshake, applies the route's
/// settings and puts a <see cref="WebSocketRelay"/> between YARP and the client by wrapping the
/// upgrade features, so that both upgraded sides go to the relay, which runs the rest of the request:
/// YARP's handshake, then the copies between them (<see cref="WebSocketRelay.RunAsync"/>).
/// Other upgrades (not WebSocket) and ordinary requests pass untouched, except on routes marked
/// <c>WebSocketOnly</c>, which answer them 426.
/// </summary>
internal sealed partial class WebSocketRelayMiddleware(
    ReloadableOptions<WebSocketProxyOptions> options,
    Microsoft.Extensions.Options.IOptions<Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets.SocketTransportOptions> transport,
    WebSocketRelays relays,
    WebSocketCounters counters,
    TimeProvider timeProvider,
    ILogger<WebSocketRelayMiddleware> logger)
{
    private const string WebSocketProtocol = "websocket";
    private const string SupportedVersion = "13";

    private readonly ConditionalWeakTable<RouteConfig, WebSocketSettings> _settings = new();

    // Kestrel's queue towards each client's socket, as the transport was set up (Gateway:Transport:MaxWriteBufferSize).
    private readonly long _socketWriteQueue = transport.Value.MaxWriteBufferSize ?? long.MaxValue;

    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var route = context.GetReverseProxyFeature().Route.Config;
        var upgrade = context.Features.Get<IHttpUpgradeFeature>();
        var connect = context.Features.Get<IHttpExtendedConnectFeature>();
        var http1 = upgrade?.IsUpgradableRequest == true
            && string.Equals(context.Request.Headers.Upgrade.ToString(), WebSocketProtocol, StringComparison.OrdinalIgnoreCase);
        var http2 = !http1 && connect?.IsExtendedConnect == true
            && string.Equals(connect.Protocol, WebSocketProtocol, StringComparison.OrdinalIgnoreCase);
        if (!http1 && !http2)
        {
            return WebSocketSettings.IsWebSocketOnly(route.Metadata) ? RefuseNonWebSocketAsync(context) : next(context);
        }

        if (CheckHandshake(context, http1) is { } problem)
        {
            return RefuseHandshakeAsync(context, problem);
        }

        return RelayAsync(context, route, http1 ? upgrade : null, http2 ? connect : null, next);
    }

    private Task RelayAsync(HttpContext context, RouteConfig route, IHttpUpgradeFeature? upgrade, IHttpExtendedConnectFeature? connect, RequestDelegate next)
    {
        var settings = SettingsFor(route);
        if (settings.Policy == SlowClientPolicy.DropMessages)
        {
            // Dropping whole messages is only safe when each message stands alone: no compression
            // context (permessage-deflate) may carry over from one message to the next.
            context.Request.Headers.Remove(HeaderNames.SecWebSocketExtensions);
        }

        var relay = new WebSocketRelay(settings, route.RouteId, context, relays, counters, timeProvider);
        context.Features.Set(relay); // UpgradedResponseTransformProvider hands it the backend's stream
        if (upgrade is not null)
        {
            context.Features.Set<IHttpUpgradeFeature>(new RelayUpgradeFeature(upgrade, relay, context.Features));
        }
        else
        {
            context.Features.Set<IHttpExtendedConnectFeature>(new RelayExtendedConnectFeature(connect!, relay, context.Features));
        }

        relay.StandInForClientRequestHead();
        return relay.RunAsync(next);
    }

    private WebSocketSettings SettingsFor(RouteConfig route)
    {
        var current = options.Current;
        if (_settings.TryGetValue(route, out var settings) && ReferenceEquals(settings.Source, current))
        {
            return settings;
        }

        settings = WebSocketSettings.Resolve(current, route.Metadata, _socketWriteQueue);
        _settings.AddOrUpdate(route, settings);
        return settings;
    }

    /// <summary>RFC 6455 §4.2.1 (and RFC 8441 §5 for HTTP/2): what the gateway checks before it bothers a backend.</summary>
    private static HandshakeProblem? CheckHandshake(HttpContext context, bool http1)
    {
        var headers = context.Request.Headers;
        if (http1 && !HttpMethods.IsGet(context.Request.Method))
        {
            return new(StatusCodes.Status400BadRequest, "the method must be GET");
        }

        if (!string.Equals(headers.SecWebSocketVersion.ToString(), SupportedVersion, StringComparison.Ordinal))
        {
            return new(StatusCodes.Status426UpgradeRequired, "Sec-WebSocket-Version must be 13");
        }

        if (http1)
        {
            Span<byte> key = stackalloc byte[18];
            if (!Convert.TryFromBase64String(headers.SecWebSocketKey.ToString(), key, out var length) || length != 16)
            {
                return new(StatusCodes.Status400BadRequest, "Sec-WebSocket-Key must be 16 bytes in base64");
            }
        }

        return null;
    }

    private Task RefuseHandshakeAsync(HttpContext context, HandshakeProblem problem)
    {
        Log.BadHandshake(logger, context.GetReverseProxyFeature().Route.Config.RouteId, problem.Text);
        context.Response.StatusCode = problem.Status;
        if (problem.Status == StatusCodes.Status426UpgradeRequired)
        {
            context.Response.Headers.SecWebSocketVersion = SupportedVersion;
        }

        return Endpoints.TextAnswer.WriteAsync(context, $"gateway: bad WebSocket handshake: {problem.Text}\n", context.RequestAborted);
    }

    private static Task RefuseNonWebSocketAsync(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status426UpgradeRequired;
        if (HttpProtocol.IsHttp11(context.Request.Protocol))
        {
            context.Response.Headers.Upgrade = WebSocketProtocol;
            context.Response.Headers.Connection = HeaderNames.Upgrade;
        }

        return Endpoints.TextAnswer.WriteAsync(context, "gateway: this route accepts only WebSocket connections\n", context.RequestAborted);
    }

    private sealed record HandshakeProblem(int Status, string Text);

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Debug, "WebSocket handshake refused on route '{Route}': {Problem}.", EventName = "WebSocketBadHandshake")]
        public static partial void BadHandshake(ILogger logger, string route, string problem);
    }
}
