using YarpGateway.Configuration;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace YarpGateway.Security;

/// <summary>
/// The route transform <c>{ "RequestHeaderFromClaim": "X-User-Id", "Claim": "sub" }</c>: the backend
/// gets the caller's claim in a header. Whatever the client sent under that name is removed first, on
/// every request of the route, so the header cannot be spoofed; no claim (or a value that is not
/// printable ASCII) means no header. Only on routes that authenticate (an <c>AuthorizationPolicy</c>
/// other than <c>Anonymous</c>).
/// </summary>
internal sealed class ClaimHeaderTransformFactory : ITransformFactory
{
    public const string HeaderKey = "RequestHeaderFromClaim";
    public const string ClaimKey = "Claim";

    public bool Validate(TransformRouteValidationContext context, IReadOnlyDictionary<string, string> transformValues)
    {
        if (!transformValues.TryGetValue(HeaderKey, out var header))
        {
            return false;
        }

        if (transformValues.Count != 2 || !transformValues.TryGetValue(ClaimKey, out var claim) || string.IsNullOrWhiteSpace(claim))
        {
            context.Errors.Add(new ArgumentException($"Transform {HeaderKey} '{header}' needs exactly one other key, \"{ClaimKey}\": the claim type to send (for example \"sub\")."));
        }

        if (!HttpSyntax.IsToken(header))
        {
            context.Errors.Add(new ArgumentException($"Transform {HeaderKey}: '{header}' is not a valid header name."));
        }

        if (!RoutePolicyNames.Authenticates(context.Route.AuthorizationPolicy))
        {
            context.Errors.Add(new ArgumentException($"Transform {HeaderKey} '{header}' is on a route without authentication, where there is no claim to send; give the route an AuthorizationPolicy."));
        }

        return true;
    }

    public bool Build(TransformBuilderContext context, IReadOnlyDictionary<string, string> transformValues)
    {
        if (!transformValues.TryGetValue(HeaderKey, out var header))
        {
            return false;
        }

        var claim = transformValues[ClaimKey];
        context.AddRequestTransform(transform =>
        {
            var headers = transform.ProxyRequest.Headers;
            headers.Remove(header);
            var value = transform.HttpContext.User.FindFirst(claim)?.Value;
            if (value is not null && IsPrintableAscii(value))
            {
                headers.TryAddWithoutValidation(header, value);
            }

            return ValueTask.CompletedTask;
        });
        return true;
    }

    private static bool IsPrintableAscii(string value)
    {
        foreach (var c in value)
        {
            if (c < ' ' || c >= 0x7F)
            {
                return false;
            }
        }

        return true;
    }
}
