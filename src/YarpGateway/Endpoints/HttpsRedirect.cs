using System.Globalization;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace YarpGateway.Endpoints;

/// <summary>
/// The optional <c>HttpsRedirect</c> endpoint's one answer: <c>308</c> to the same host and target over https, as
/// nginx's <c>return 301 https://$host$request_uri</c> and Caddy's automatic redirect do. A gateway that ends TLS itself
/// had no way to answer a browser that types the site's name, which goes to port 80 first: the gateway serves one proxy
/// endpoint, and a plain-HTTP port beside it would have proxied past connection admission (a third endpoint is still a
/// start-up error). 308 keeps the method and body of a POST (a 301 lets clients turn it into a GET). The target is the
/// client's as sent (path and query, escapes unchanged); the host is the request's, without its port
/// (<see cref="HttpsRedirectOptions.Port"/> says which). Nothing is proxied on this endpoint and no route is read. Each
/// HTTP/1.x answer closes its connection (the browser goes on to https on another), and at most
/// <see cref="HttpsRedirectOptions.MaxConnections"/> are open at once (<see cref="ConnectionCap"/>).
/// </summary>
internal static class HttpsRedirect
{
    internal const string Refusal = "gateway: this port only redirects to https, for a request with a Host and a path\n";

    /// <summary>Closes a connection that would be one more than <paramref name="max"/> open on the endpoint, before Kestrel reads from it.</summary>
    public static Func<ConnectionDelegate, ConnectionDelegate> ConnectionCap(int max)
    {
        var open = new StrongBox<int>();
        return next => async connection =>
        {
            if (Interlocked.Increment(ref open.Value) > max)
            {
                Interlocked.Decrement(ref open.Value);
                connection.Abort();
                return;
            }

            try
            {
                await next(connection);
            }
            finally
            {
                Interlocked.Decrement(ref open.Value);
            }
        };
    }

    /// <summary>What follows the host in the redirect's address for <paramref name="port"/>: nothing for 443, else <c>:port</c>.</summary>
    internal static string AuthoritySuffix(int port) => port == 443 ? string.Empty : ":" + port.ToString(CultureInfo.InvariantCulture);

    public static RequestDelegate Answer(int port)
    {
        var authoritySuffix = AuthoritySuffix(port);
        return context =>
        {
            var response = context.Response;
            if (Location(context, authoritySuffix) is not { } location)
            {
                response.StatusCode = StatusCodes.Status400BadRequest;
                return TextAnswer.WriteAsync(context, Refusal, context.RequestAborted);
            }

            response.StatusCode = StatusCodes.Status308PermanentRedirect;
            response.Headers.Location = location;
            response.ContentLength = 0;
            if (!HttpProtocol.IsHttp2(context.Request.Protocol))
            {
                response.Headers.Connection = "close"; // the client's next request is to https, on another connection
            }

            return Task.CompletedTask;
        };
    }

    /// <summary>The https:// address of the request's host and target; null without a host, or for a target that is not a path (<c>*</c>, an absolute URI).</summary>
    internal static string? Location(HttpContext context, string authoritySuffix)
    {
        var host = context.Request.Host;
        var target = context.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (!host.HasValue || string.IsNullOrEmpty(host.Host) || string.IsNullOrEmpty(target) || target[0] != '/')
        {
            return null;
        }

        return string.Concat("https://", host.Host, authoritySuffix, target);
    }
}
