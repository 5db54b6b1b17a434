using System.Collections;
using System.Reflection;
using System.Text.Json.Nodes;
using Yarp.ReverseProxy.Configuration;
using YarpGateway.Configuration;

namespace YarpGateway.Tests.Configuration;

/// <summary>
/// <see cref="ProxyConfigReader"/> is a hand copy of YARP's schema. This writes a value into every
/// settable property of YARP's config records (found by reflection, nested records included), reads
/// it back, and fails on any property that came back unset: a property YARP adds in a new version
/// fails this test until the reader reads it.
/// </summary>
public class ProxyConfigReaderCoverageTests
{
    // Set by the reader from the section's key, or covered by a dedicated test.
    private static readonly HashSet<string> FromKeys = ["RouteConfig.RouteId", "ClusterConfig.ClusterId"];

    [Fact]
    public void EveryPropertyOfYarpsConfigRecords_IsRead()
    {
        var route = Generate(typeof(RouteConfig))!.AsObject();
        route["ClusterId"] = "c1";
        var cluster = Generate(typeof(ClusterConfig))!.AsObject();
        var json = new JsonObject
        {
            ["ReverseProxy"] = new JsonObject
            {
                ["Routes"] = new JsonObject { ["r1"] = route },
                ["Clusters"] = new JsonObject { ["c1"] = cluster },
            },
        };

        var read = ProxyConfigReader.Read(ProxyConfigReaderTests.Json(json.ToJsonString()));

        Assert.Empty(read.Errors);
        var unread = new List<string>();
        FindUnset(Assert.Single(read.Routes), unread);
        FindUnset(Assert.Single(read.Clusters), unread);
        Assert.True(unread.Count == 0, "not read by ProxyConfigReader: " + string.Join(", ", unread));
    }

    private static IEnumerable<PropertyInfo> Settable(Type type)
        => type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.SetMethod is not null && p.GetIndexParameters().Length == 0);

    // A JSON value for a property of this type that is not the type's default.
    private static JsonNode? Generate(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(string))
        {
            return "v";
        }

        if (type == typeof(bool))
        {
            return true;
        }

        if (type == typeof(int) || type == typeof(long))
        {
            return 7;
        }

        if (type == typeof(double))
        {
            return 0.5;
        }

        if (type == typeof(TimeSpan))
        {
            return "00:00:07";
        }

        if (type == typeof(Version))
        {
            return "2";
        }

        if (type == typeof(Uri))
        {
            return "http://proxy.example:8080/";
        }

        if (type.IsEnum)
        {
            var names = Enum.GetNames(type);
            return type == typeof(System.Security.Authentication.SslProtocols) ? "Tls12" : names[^1];
        }

        if (type == typeof(IReadOnlyDictionary<string, string>))
        {
            return new JsonObject { ["k"] = "v" };
        }

        if (type == typeof(IReadOnlyDictionary<string, DestinationConfig>))
        {
            var destination = Generate(typeof(DestinationConfig))!.AsObject();
            destination["Address"] = "http://127.0.0.1:1/";
            return new JsonObject { ["d1"] = destination };
        }

        if (type == typeof(IReadOnlyList<IReadOnlyDictionary<string, string>>))
        {
            return new JsonArray(new JsonObject { ["PathRemovePrefix"] = "/x" });
        }

        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IReadOnlyList<>))
        {
            return new JsonArray(Generate(type.GetGenericArguments()[0]));
        }

        if (type.IsClass)
        {
            var node = new JsonObject();
            foreach (var property in Settable(type))
            {
                node[property.Name] = Generate(property.PropertyType);
            }

            return node;
        }

        throw new NotSupportedException($"no sample value for {type}; teach the test this type");
    }

    private static void FindUnset(object record, List<string> unset)
    {
        var type = record.GetType();
        foreach (var property in Settable(type))
        {
            var name = $"{type.Name}.{property.Name}";
            if (FromKeys.Contains(name))
            {
                continue;
            }

            var value = property.GetValue(record);
            var propertyType = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (value is null || (propertyType.IsValueType && value.Equals(Activator.CreateInstance(propertyType))) || value is ICollection { Count: 0 })
            {
                unset.Add(name);
                continue;
            }

            if (value is IEnumerable items and not string)
            {
                foreach (var item in items)
                {
                    var element = item is DictionaryEntry entry ? entry.Value : item?.GetType().GetProperty("Value") is { } kv && item.GetType().Name.StartsWith("KeyValuePair", StringComparison.Ordinal) ? kv.GetValue(item) : item;
                    if (element is not null && element.GetType().Namespace?.StartsWith("Yarp.", StringComparison.Ordinal) == true)
                    {
                        FindUnset(element, unset);
                    }
                }
            }
            else if (propertyType.IsClass && propertyType.Namespace?.StartsWith("Yarp.", StringComparison.Ordinal) == true)
            {
                FindUnset(value, unset);
            }
        }
    }
}
