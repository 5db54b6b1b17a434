using Microsoft.Extensions.Primitives;

namespace YarpGateway.Endpoints;

/// <summary>
/// A request whose answer is a stream that lasts: a WebSocket's (or SPDY's) handshake (<see cref="UpgradeRequest"/>), or one
/// that accepts <c>text/event-stream</c> (a browser's <c>EventSource</c>). The output cache skips them (nothing to store, and
/// with locking every other client of the URL would wait for the stream to end); a route may let a browser send their
/// token in the query (<c>Security.QueryToken</c>), since neither the WebSocket API nor <c>EventSource</c> sets headers.
/// </summary>
internal static class LongLivedRequest
{
    public const string EventStream = "text/event-stream";

    public static bool Is(HttpContext context) => AcceptsEventStream(context.Request.Headers.Accept) || UpgradeRequest.Is(context);

    private static bool AcceptsEventStream(StringValues accept)
    {
        foreach (var value in accept)
        {
            if (value is not null && value.Contains(EventStream, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }
}
