using System.Text.Json;
using System.Text.Json.Nodes;

namespace YarpGateway.Tests.Functional;

/// <summary>Builds gateway config files in YARP's schema and writes them the way an editor or a ConfigMap swap does.</summary>
internal static class ProxyConfigJson
{
    /// <summary>A cluster of the given backends with weights, and one catch-all route to it.</summary>
    public static JsonObject CatchAll(string policy, params (TestBackend Backend, string? Weight)[] destinations)
        => Config(("all", "/{**catch-all}", "c1"), ("c1", policy, destinations));

    /// <summary>
    /// One catch-all route (<c>all</c>) to a cluster (<c>c1</c>) of one destination (<c>d1</c>) at <paramref name="address"/>:
    /// for backends that are not a <see cref="TestBackend"/> (raw sockets, HTTP/2-only Kestrel apps, unused ports).
    /// </summary>
    public static JsonObject CatchAll(Uri address) => new()
    {
        ["ReverseProxy"] = new JsonObject
        {
            ["Routes"] = new JsonObject { ["all"] = new JsonObject { ["ClusterId"] = "c1", ["Match"] = new JsonObject { ["Path"] = "/{**catch-all}" } } },
            ["Clusters"] = new JsonObject { ["c1"] = new JsonObject { ["Destinations"] = new JsonObject { ["d1"] = new JsonObject { ["Address"] = address.ToString() } } } },
        },
    };

    /// <summary>A route <c>/admin/{**rest}</c> to <paramref name="admin"/>, and a catch-all beside it to <paramref name="site"/>: where a path the two read differently would pass the admin route's policies.</summary>
    public static JsonObject AdminRouteBesideACatchAll(TestBackend admin, TestBackend site)
        => Config(
            [("admin", "/admin/{**rest}", "admins"), ("all", "/{**catch-all}", "sites")],
            [("admins", "RoundRobin", [(admin, null)]), ("sites", "RoundRobin", [(site, null)])]);

    public static JsonObject Config((string Id, string Path, string Cluster) route, (string Id, string Policy, (TestBackend Backend, string? Weight)[] Destinations) cluster)
        => Config([route], [cluster]);

    public static JsonObject Config(
        IEnumerable<(string Id, string Path, string Cluster)> routes,
        IEnumerable<(string Id, string Policy, (TestBackend Backend, string? Weight)[] Destinations)> clusters)
    {
        var routesJson = new JsonObject();
        foreach (var (id, path, cluster) in routes)
        {
            routesJson[id] = new JsonObject { ["ClusterId"] = cluster, ["Match"] = new JsonObject { ["Path"] = path } };
        }

        var clustersJson = new JsonObject();
        foreach (var (id, policy, destinations) in clusters)
        {
            var destinationsJson = new JsonObject();
            foreach (var (backend, weight) in destinations)
            {
                var destination = new JsonObject { ["Address"] = backend.Address.ToString() };
                if (weight is not null)
                {
                    destination["Metadata"] = new JsonObject { ["Weight"] = weight };
                }

                destinationsJson[backend.Name] = destination;
            }

            clustersJson[id] = new JsonObject { ["LoadBalancingPolicy"] = policy, ["Destinations"] = destinationsJson };
        }

        return new JsonObject { ["ReverseProxy"] = new JsonObject { ["Routes"] = routesJson, ["Clusters"] = clustersJson } };
    }

    /// <summary>Replaces the file in one step (write aside, then rename), as a ConfigMap update does.</summary>
    public static void WriteAtomically(string path, string text)
    {
        var temp = path + ".tmp";
        File.WriteAllText(temp, text);
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>Writes the config to a new temporary folder; returns the file's path.</summary>
    public static string WriteTemp(string prefix, string text)
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory(prefix).FullName, "gateway.json");
        WriteAtomically(path, text);
        return path;
    }

    /// <inheritdoc cref="WriteTemp(string, string)"/>
    public static string WriteTemp(string prefix, JsonNode json) => WriteTemp(prefix, Text(json));

    public static void WriteAtomically(string path, JsonNode json) => WriteAtomically(path, Text(json));

    private static string Text(JsonNode json) => json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
}
