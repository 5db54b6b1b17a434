using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;
using YarpGateway.Configuration;

namespace YarpGateway.ForwardedHeaders;

/// <summary>
/// A backend's <c>Location</c> that points at the backend's own address (the destination's scheme, host and port, as the
/// gateway reached it) becomes a path-absolute reference, <c>/login</c>, which the client resolves against the address it
/// used: nginx does the same by default (<c>proxy_redirect default</c>). YARP sends the destination's host as
/// <c>Host</c>, so backends that build absolute redirects from it (Rails' <c>redirect_to</c>, Jetty, older Tomcat and
/// Werkzeug) sent clients to <c>http://10.0.0.5:8080/login</c>, an address only the gateway can reach (tried). A
/// reference without scheme and host stays right behind a TLS-terminating load balancer and under every name the
/// gateway is reached by. Any other <c>Location</c> (relative already, or another host) passes unchanged.
/// One header read per response; a parse only for a response with an absolute <c>Location</c>.
/// </summary>
internal sealed class LocationTransformProvider : RouteTransformProvider
{
    public override void Apply(TransformBuilderContext context) => context.AddResponseTransform(static transform =>
    {
        var headers = transform.HttpContext.Response.Headers;
        var location = headers.Location;
        if (location.Count == 1
            && transform.ProxyResponse?.RequestMessage?.RequestUri is { } destination
            && OnTheDestination(location.ToString(), destination) is { } reference)
        {
            headers.Location = reference;
        }

        return ValueTask.CompletedTask;
    });

    /// <summary>
    /// The path-absolute reference <paramref name="location"/> stands for when it is an absolute URI on
    /// <paramref name="destination"/>'s scheme, host and port; null otherwise.
    /// </summary>
    internal static string? OnTheDestination(string location, Uri destination)
    {
        if (!location.StartsWith("http", StringComparison.OrdinalIgnoreCase)
            || !Uri.TryCreate(location, UriKind.Absolute, out var uri)
            || !string.Equals(uri.Scheme, destination.Scheme, StringComparison.OrdinalIgnoreCase)
            || !string.Equals(uri.IdnHost, destination.IdnHost, StringComparison.OrdinalIgnoreCase)
            || uri.Port != destination.Port)
        {
            return null;
        }

        // What follows the authority, as the backend wrote it (its escapes unchanged).
        var authorityEnd = location.IndexOf("//", StringComparison.Ordinal) + 2;
        var rest = location.AsSpan(authorityEnd).IndexOfAny('/', '?', '#');
        if (rest < 0)
        {
            return "/";
        }

        var start = authorityEnd + rest;
        return location[start] == '/' ? location[start..] : string.Concat("/", location.AsSpan(start));
    }
}
