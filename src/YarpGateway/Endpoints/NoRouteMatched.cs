namespace YarpGateway.Endpoints;

/// <summary>
/// A request that no route matches is answered 404 with a one-line body that says so. ASP.NET Core's own 404 was empty, and
/// an operator with curl could not tell it from a backend's own 404 (a route whose <c>Hosts</c> lack the name the client
/// used, <c>www.</c> or a port, looks like a backend that has no such page); nginx's default server answers its own page.
/// After routing and CORS (a request the global limit refused, carried to CORS for its headers, has ended there): a feature
/// read per request (Kestrel's own), nothing more for a request a route matches. A request whose method (or header, or query
/// parameter) a route's match does not list is one no route matches, as before.
/// </summary>
internal static class NoRouteMatched
{
    internal const string Body = "gateway: no route matches this request\n";

    public static Func<RequestDelegate, RequestDelegate> Middleware => static next => context
        => context.GetEndpoint() is null ? AnswerAsync(context) : next(context);

    private static Task AnswerAsync(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status404NotFound;
        return TextAnswer.WriteAsync(context, Body, context.RequestAborted);
    }
}
