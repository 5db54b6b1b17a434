using System.Reflection;

namespace YarpGateway.Tests.Configuration;

/// <summary>Every setting of every <c>Gateway:*</c> section, the sections inside them included, by key and type.</summary>
internal static class GatewaySettingsSchema
{
    public static IEnumerable<(string Key, Type Type)> Leaves()
    {
        foreach (var (section, type) in GatewayServiceCollectionExtensions.SettingsSchema.GatewaySections)
        {
            foreach (var leaf in Leaves(section, type))
            {
                yield return leaf;
            }
        }
    }

    private static IEnumerable<(string Key, Type Type)> Leaves(string prefix, Type type)
    {
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite))
        {
            var t = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (t.IsClass && t != typeof(string) && t.Namespace?.StartsWith("YarpGateway", StringComparison.Ordinal) == true)
            {
                foreach (var leaf in Leaves($"{prefix}:{property.Name}", t))
                {
                    yield return leaf;
                }
            }
            else
            {
                yield return ($"{prefix}:{property.Name}", t);
            }
        }
    }
}
