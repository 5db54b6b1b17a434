namespace YarpGateway.Cors;

/// <summary>
/// A request the global limit refused before routing (503 and <c>Retry-After</c> set, nothing written) gets its route's
/// CORS headers: a browser hides from a script a cross-origin answer that has none, so a page behind a busy gateway saw
/// a network error (<c>TypeError: Failed to fetch</c>) where a route limit's 503, refused after CORS, gave it the status
/// (tried). Only for a request with an <c>Origin</c> (a browser's cross-origin request) when CORS policies exist: it is
/// routed and goes through its route's policy, then ends right after (<see cref="EndAfterCors"/>), before authorization
/// and everything that would serve it; a preflight is answered by the policy, as always, so that the browser sends the
/// request itself and sees its answer. Any other refused request ends where it was refused, as before.
/// </summary>
internal sealed class RefusedBeforeRouting(CorsRule cors)
{
    private readonly bool _enabled = cors.Enabled; // the CORS middleware runs only when policies existed at start-up

    /// <summary>
    /// Whether the refused request goes on to routing and CORS, marked so that <see cref="EndAfterCors"/> ends it; the
    /// caller then runs the rest of the pipeline instead of returning.
    /// </summary>
    public bool CarryToCors(HttpContext context)
    {
        if (!_enabled || context.Response.StatusCode != StatusCodes.Status503ServiceUnavailable || context.Request.Headers.Origin.Count == 0)
        {
            return false;
        }

        if (HttpMethods.IsOptions(context.Request.Method) && context.Request.Headers.AccessControlRequestMethod.Count > 0)
        {
            context.Response.Headers.RetryAfter = default; // a preflight: the policy answers it (204), as it answers any
        }

        context.Features.Set(Marker.Instance);
        return true;
    }

    /// <summary>Right after the CORS middleware: a request carried there ends (its 503 written, with the policy's headers).</summary>
    public static Func<RequestDelegate, RequestDelegate> EndAfterCors => static next => context
        => context.Response.StatusCode == StatusCodes.Status503ServiceUnavailable && context.Features.Get<Marker>() is not null
            ? Admission.RequestAdmission.WriteRefusalAsync(context)
            : next(context);

    private sealed class Marker
    {
        public static readonly Marker Instance = new();
    }
}
