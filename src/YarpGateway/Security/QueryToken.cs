using Yarp.ReverseProxy.Model;

namespace YarpGateway.Security;

/// <summary>
/// The route metadata <c>"TokenQueryParameter": "access_token"</c>: a bearer token read from that query parameter, for the
/// requests a browser cannot give an <c>Authorization</c> header, a WebSocket's handshake (the browser's WebSocket API
/// sets no headers) and a server-sent-events request (nor does <c>EventSource</c>); SignalR's JavaScript client sends its
/// token that way for both. Only for those two kinds of request, and only when the request has no
/// <c>Authorization</c> header: every other request of the route must carry its token in the header, so that tokens do not
/// travel in URLs where they need not. The query is forwarded unchanged, as the header is (the backend may read it too).
/// </summary>
internal static class QueryToken
{
    public const string MetadataKey = "TokenQueryParameter";

    /// <summary>The longest parameter name accepted.</summary>
    private const int MaxNameLength = 64;

    /// <summary>The token in the route's query parameter, when this request may carry one there; else null.</summary>
    public static string? From(HttpContext context)
    {
        var request = context.Request;
        if (request.Headers.Authorization.Count > 0
            || context.GetEndpoint()?.Metadata.GetMetadata<RouteModel>()?.Config.Metadata is not { } metadata
            || !metadata.TryGetValue(MetadataKey, out var name)
            || !Endpoints.LongLivedRequest.Is(context))
        {
            return null;
        }

        var values = request.Query[name];
        return values.Count == 1 && !string.IsNullOrEmpty(values[0]) ? values[0] : null; // two of it: which one was meant?
    }

    /// <summary>An error for a parameter name that is not one (letters, digits, <c>-._~</c>, at most 64); null if it is.</summary>
    public static string? Check(string name)
    {
        if (name.Length is 0 or > MaxNameLength)
        {
            return $"'{name}' is not a query parameter name: 1 to {MaxNameLength} characters.";
        }

        foreach (var c in name)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('-' or '.' or '_' or '~'))
            {
                return $"'{name}' is not a query parameter name: use letters, digits and -._~ (for example access_token).";
            }
        }

        return null;
    }
}
