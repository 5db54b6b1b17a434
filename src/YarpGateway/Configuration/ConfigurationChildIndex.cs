namespace YarpGateway.Configuration;

/// <summary>
/// The immediate children of every section of one provider's keys, built in one pass, with the base
/// <see cref="ConfigurationProvider.GetChildKeys"/>'s answers: "a:b:c" is a child "a" of the root (a null parent), "b" of
/// "a" and "c" of "a:b". The base class answers by scanning every key it holds, so that a walk of the configuration (options
/// binding, the route reader, the unknown-key check, the change log) was quadratic in the number of keys: with 5,000
/// routes a one-key edit took 11 s of CPU to apply.
/// </summary>
internal sealed class ConfigurationChildIndex
{
    /// <summary>The index of a provider's <paramref name="data"/>: a provider builds a new one when its data is replaced (a reload).</summary>
    public ConfigurationChildIndex(IDictionary<string, string?> data)
        : this(data.Keys)
    {
        Data = data;
    }

    /// <summary>The index of <paramref name="keys"/>: every key a provider holds, or every section's path.</summary>
    public ConfigurationChildIndex(IEnumerable<string> keys)
    {
        // Looked up by span: a parent's path or a segment seen before is not allocated again (5,000 routes are about
        // 60,000 keys of four to six segments each, most of them under parents already seen).
        var root = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var rootBySpan = root.GetAlternateLookup<ReadOnlySpan<char>>();
        var children = new Dictionary<string, HashSet<string>>(StringComparer.OrdinalIgnoreCase);
        var childrenBySpan = children.GetAlternateLookup<ReadOnlySpan<char>>();
        foreach (var key in keys)
        {
            var start = 0;
            while (true)
            {
                var end = key.IndexOf(ConfigurationPath.KeyDelimiter, start, StringComparison.Ordinal);
                var segment = end < 0 ? key.AsSpan(start) : key.AsSpan(start, end - start);
                if (start == 0)
                {
                    rootBySpan.Add(segment);
                }
                else
                {
                    var parent = key.AsSpan(0, start - 1);
                    if (!childrenBySpan.TryGetValue(parent, out var set))
                    {
                        set = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
                        childrenBySpan[parent] = set;
                    }

                    set.GetAlternateLookup<ReadOnlySpan<char>>().Add(segment);
                }

                if (end < 0)
                {
                    break;
                }

                start = end + 1;
            }
        }

        Root = [.. root];
        Children = children.ToDictionary(e => e.Key, e => e.Value.ToArray(), StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>The data indexed, if it was given as a provider's data.</summary>
    public IDictionary<string, string?>? Data { get; }

    public string[] Root { get; }

    public Dictionary<string, string[]> Children { get; }

    /// <summary>What <see cref="IConfigurationProvider.GetChildKeys"/> answers: <paramref name="earlierKeys"/> and the children of <paramref name="parentPath"/>, sorted.</summary>
    public List<string> ChildKeys(IEnumerable<string> earlierKeys, string? parentPath)
    {
        var results = new List<string>(earlierKeys);
        if (parentPath is null)
        {
            results.AddRange(Root);
        }
        else if (Children.TryGetValue(parentPath, out var children))
        {
            results.AddRange(children);
        }

        results.Sort(ConfigurationKeyComparer.Instance);
        return results;
    }
}
