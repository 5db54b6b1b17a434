using System.Collections.Concurrent;
using Yarp.ReverseProxy.Model;

namespace YarpGateway.OutputCaching;

/// <summary>
/// Names, once per route and header, the routes whose responses are not stored because their <c>Vary</c> names a
/// header the policy does not vary by. One per gateway: ASP.NET Core builds its own instance of each named policy.
/// </summary>
internal sealed partial class OutputCacheVaryLog(ILogger<OutputCacheVaryLog> logger)
{
    /// <summary>Routes and headers already named; bounded, since the header names come from backends.</summary>
    internal const int MaxLogged = 1000;

    private readonly ConcurrentDictionary<(string Route, string Header), byte> _logged = new();

    public void NotStored(HttpContext context, string header)
    {
        var route = context.GetEndpoint()?.Metadata.GetMetadata<RouteModel>()?.Config;
        var routeId = route?.RouteId ?? "-";
        if (_logged.Count < MaxLogged && _logged.TryAdd((routeId, header.ToLowerInvariant()), 0))
        {
            if (header == "*")
            {
                Log.VaryStar(logger, routeId);
            }
            else
            {
                Log.VaryNotKeyed(logger, routeId, header, route?.OutputCachePolicy ?? "-");
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "Output cache: responses on route '{Route}' say 'Vary: {Header}', and output-cache policy '{Policy}' does not vary by '{Header}', so they are passed through and not stored (one stored entry would be served to clients that sent another '{Header}'). Add '{Header}' to the policy's VaryByHeader to cache one entry per value. Logged once per route and header.", EventName = "OutputCacheVaryNotKeyed")]
        public static partial void VaryNotKeyed(ILogger logger, string route, string header, string policy);

        [LoggerMessage(2, LogLevel.Warning, "Output cache: responses on route '{Route}' say 'Vary: *', so they are passed through and never stored. Logged once per route.", EventName = "OutputCacheVaryAll")]
        public static partial void VaryStar(ILogger logger, string route);
    }
}
