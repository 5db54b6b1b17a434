using System.Net;
using System.Runtime.CompilerServices;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Model;
using YarpGateway.Configuration;
using YarpGateway.Telemetry;

namespace YarpGateway.Security;

/// <summary>
/// A route's client networks, nginx's <c>allow 10.0.0.0/8; deny all;</c>: with
/// <c>Metadata: { "AllowedNetworks": "10.0.0.0/8, 192.168.1.0/24, 2001:db8::/32, 203.0.113.7" }</c> a route takes requests
/// only from a client address in one of them, and answers any other 403 before CORS, authentication, rate limits, the
/// output cache, admission or a backend sees it (a flood from outside costs no token validation). The address is the
/// client's as the gateway trusts it: the peer's, or the one a trusted proxy or load balancer gave
/// (<c>Gateway:ForwardedHeaders</c>, the PROXY protocol), never what a client claims in a header of its own. An
/// IPv4 client reached over an IPv6 socket (<c>::ffff:10.1.2.3</c>) is matched as IPv4. Routes without the key are
/// open to every address. Checked with the configuration (a network with host bits set, such as <c>10.1.2.3/8</c>,
/// is an error: it would let in more than it says), applied with it, live.
/// A request on a route without the key costs a look-up in its metadata; none is made while no route has it.
/// </summary>
internal sealed partial class ClientNetworks(SecurityMetrics metrics, Telemetry.RequestId requestIds, TimeProvider timeProvider, ILogger<ClientNetworks> logger) : IProxyConfigRule
{
    public const string MetadataKey = "AllowedNetworks";

    private static readonly ConditionalWeakTable<RouteConfig, IPNetwork[]> Parsed = new();

    private readonly LogThrottle _throttle = new(timeProvider, logger);

    // Set once a configuration with a route that has the key has been checked: until then, requests skip the look-up.
    private volatile bool _inUse;

    public IEnumerable<string> MetadataKeys => [MetadataKey];

    public Func<RequestDelegate, RequestDelegate> Middleware => next => context =>
    {
        if (_inUse
            && context.GetEndpoint()?.Metadata.GetMetadata<RouteModel>()?.Config is { Metadata: { } metadata } route
            && metadata.ContainsKey(MetadataKey)
            && !Allows(NetworksOf(route), context.Connection.RemoteIpAddress))
        {
            return RefuseAsync(context, route.RouteId);
        }

        return next(context);
    };

    /// <summary>Whether <paramref name="client"/> is in one of <paramref name="networks"/>; an unknown address is in none.</summary>
    internal static bool Allows(IPNetwork[] networks, IPAddress? client)
    {
        if (client is null)
        {
            return false;
        }

        if (client.IsIPv4MappedToIPv6)
        {
            client = client.MapToIPv4();
        }

        foreach (var network in networks)
        {
            if (network.Contains(client))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The networks of a route's <c>AllowedNetworks</c>, comma-separated: CIDR networks with no host bits set, or single
    /// addresses (a /32 or /128); null, with the first entry that is neither, when one is not.
    /// </summary>
    internal static IPNetwork[]? TryParse(string text, out string? bad)
    {
        bad = null;
        var networks = new List<IPNetwork>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (OptionChecks.TryParseNetwork(part, out var network))
            {
                networks.Add(network);
            }
            else if (!part.Contains('/', StringComparison.Ordinal) && OptionChecks.TryParseAddress(part, out var address))
            {
                networks.Add(new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128));
            }
            else
            {
                bad = part;
                return null;
            }
        }

        if (networks.Count == 0)
        {
            bad = text;
            return null;
        }

        return [.. networks];
    }

    private static IPNetwork[] NetworksOf(RouteConfig route)
        => Parsed.GetValue(route, static route => TryParse(route.Metadata![MetadataKey], out _) ?? []); // checked before it is applied: never null here

    private Task RefuseAsync(HttpContext context, string route)
    {
        var client = context.Connection.RemoteIpAddress?.ToString() ?? "an unknown address";
        metrics.Refused(route, StatusCodes.Status403Forbidden, "network");
        if (logger.IsEnabled(LogLevel.Information) && _throttle.ShouldLog(route, out var suppressed))
        {
            Log.Refused(logger, route, requestIds.Of(context), client, suppressed);
        }

        context.Response.StatusCode = StatusCodes.Status403Forbidden;
        return Endpoints.TextAnswer.WriteAsync(context, $"gateway: this route does not take requests from {client}\n", context.RequestAborted);
    }

    public void ValidateRoute(RouteConfig route, string key, ICollection<ConfigError> errors)
    {
        if (route.Metadata is not { } metadata || !metadata.TryGetValue(MetadataKey, out var text))
        {
            return;
        }

        if (TryParse(text, out var bad) is null)
        {
            errors.Add(new ConfigError($"{key}:Metadata:{MetadataKey}",
                $"'{bad}' is not a network in CIDR notation with no host bits set (10.0.0.0/8, 2001:db8::/32) or an address (203.0.113.7); list them separated by commas."));
            return;
        }

        _inUse = true;
    }

    public void ValidateCluster(ClusterConfig cluster, string key, ICollection<ConfigError> errors)
    {
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Refused with 403 on route '{Route}' (request id {RequestId}): {Client} is in none of its AllowedNetworks; {Suppressed} similar refusals in the last second not logged.", EventName = "NetworkRefused")]
        public static partial void Refused(ILogger logger, string route, string requestId, string client, long suppressed);
    }
}
