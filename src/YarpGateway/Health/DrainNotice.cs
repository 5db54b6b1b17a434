using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using YarpGateway.Endpoints;

namespace YarpGateway.Health;

/// <summary>
/// From the moment shutdown begins, tells every client on the proxy endpoint to move to another
/// replica before anything is closed under it: each HTTP/1.x response carries <c>Connection: close</c>
/// (Kestrel then closes that connection once the response is sent), and each HTTP/2 connection gets
/// GOAWAY (Kestrel's graceful close: streams already open finish, the client opens no more).
/// Without this, idle keep-alive connections stayed open until the drain delay ended and were then
/// closed with no notice, so a request sent on one at that moment was lost.
/// Costs one volatile read per request until shutdown.
/// </summary>
internal sealed class DrainNotice
{
    private volatile bool _draining;

    public bool IsDraining => _draining;

    /// <summary>Starts telling clients; sends GOAWAY to the HTTP/2 connections among <paramref name="open"/>. Returns how many.</summary>
    public int Begin(IEnumerable<ConnectionContext> open)
    {
        _draining = true;
        var goAway = 0;
        foreach (var connection in open)
        {
            try
            {
                if (Http2PriorKnowledge.IsHttp2(connection) && connection.Features.Get<IConnectionLifetimeNotificationFeature>() is { } lifetime)
                {
                    lifetime.RequestClose();
                    goAway++;
                }
            }
            catch (ObjectDisposedException)
            {
                // Closing as we look at it (its TLS stream already disposed): nothing to tell.
            }
        }

        return goAway;
    }

    /// <summary>Proxy pipeline middleware: while draining, marks each request's connection to close after it.</summary>
    public Func<RequestDelegate, RequestDelegate> Middleware => next => context =>
    {
        if (_draining)
        {
            Notify(context);
        }

        return next(context);
    };

    private static void Notify(HttpContext context)
    {
        if (HttpProtocol.IsHttp2(context.Request.Protocol) || HttpProtocol.IsHttp3(context.Request.Protocol))
        {
            // A connection opened during the drain delay: GOAWAY after this stream.
            context.Features.Get<IConnectionLifetimeNotificationFeature>()?.RequestClose();
            return;
        }

        context.Response.OnStarting(static state =>
        {
            var response = ((HttpContext)state).Response;
            if (response.StatusCode != StatusCodes.Status101SwitchingProtocols)
            {
                response.Headers.Connection = "close";
            }

            return Task.CompletedTask;
        }, context);
    }
}
