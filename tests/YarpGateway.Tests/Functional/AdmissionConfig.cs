using System.Text.Json.Nodes;

namespace YarpGateway.Tests.Functional;

/// <summary>Config snippets for admission tests: limits go in route or cluster Metadata.</summary>
internal static class AdmissionConfig
{
    public static JsonObject Limit(string maxConcurrency, string? maxQueue = null, string? queueTimeout = null)
    {
        var metadata = new JsonObject { ["MaxConcurrency"] = maxConcurrency };
        if (maxQueue is not null)
        {
            metadata["MaxQueue"] = maxQueue;
        }

        if (queueTimeout is not null)
        {
            metadata["QueueTimeout"] = queueTimeout;
        }

        return metadata;
    }

    /// <summary>A catch-all route to one backend, with <paramref name="routeMetadata"/> on the route.</summary>
    public static JsonObject CatchAllWithRouteLimit(TestBackend backend, JsonObject routeMetadata)
    {
        var config = ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1"));
        config["ReverseProxy"]!["Routes"]!["all"]!["Metadata"] = routeMetadata;
        return config;
    }
}
