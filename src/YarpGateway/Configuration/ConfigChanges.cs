namespace YarpGateway.Configuration;

/// <summary>
/// What a reload changed in a configuration section, in the words of its keys, for the reload's log
/// line: a value changed (<c>Clusters:api:Destinations:b:Metadata:Weight: '1' -> '3'</c>), a route,
/// cluster or destination added or removed (named once, not key by key), a list of values added or removed whole with
/// its values (<c>KnownNetworks: added ('10.0.0.0/8', '198.51.100.0/24')</c>, up to <see cref="MaxListed"/>), at most
/// <see cref="MaxItems"/> items and then how many more. Values are shown only for the keys the caller
/// allows: a transform may set a credential header, and the authentication section holds keys.
/// </summary>
internal static class ConfigChanges
{
    public const int MaxItems = 10;

    /// <summary>The most values of a list added or removed whole that the item shows; a longer list is named only.</summary>
    public const int MaxListed = 5;

    private const int MaxValueLength = 80;
    private const char Separator = ':';

    /// <summary>What the log says when the keys are the same but for their case (a route renamed from <c>Api</c> to <c>api</c>).</summary>
    public const string OnlyCase = "only the case of a key";

    /// <summary>Shows no value: key names only.</summary>
    public static readonly Func<string, bool> NoValues = static _ => false;

    /// <summary>
    /// Shows values (limits, times, addresses, weights), except under <c>Transforms</c> (a transform
    /// may set a credential header) and for a key whose name says it holds a secret.
    /// </summary>
    public static readonly Func<string, bool> ValuesExceptSecrets = static key => !key.Contains(":Transforms:", StringComparison.OrdinalIgnoreCase) && !NamesASecret(key);

    private static bool NamesASecret(string key)
    {
        var name = key.AsSpan(key.LastIndexOf(Separator) + 1);
        if (name.Equals("TokensPerPeriod", StringComparison.OrdinalIgnoreCase))
        {
            return false; // a rate limit's bucket refill, which a reload applies: its value is what the operator wants to see
        }

        foreach (var word in (ReadOnlySpan<string>)["key", "secret", "password", "token", "credential"])
        {
            if (name.Contains(word, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The keys with a value in <paramref name="section"/> (the section's own included), with their
    /// values, in one string: equal strings mean nothing in it changed. An emptied object (<c>{}</c>)
    /// reads as the section being absent.
    /// </summary>
    public static string Snapshot(IConfiguration configuration, string section)
        => Snapshot(configuration.GetSection(section).AsEnumerable().Where(kv => kv.Value is not null)!);

    /// <summary>Keys and values (captured ones, <see cref="Capture"/>) in one string, in key order: equal strings mean equal keys and values.</summary>
    public static string Snapshot(IEnumerable<KeyValuePair<string, string>> keys)
        => string.Join('\n', keys.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}"));

    /// <summary>
    /// <see cref="Capture"/>, or null when the section no longer matches <paramref name="snapshot"/> once it is read: a file
    /// was read again meanwhile (SIGHUP reads each file in turn, and the watcher may read the same one), so the keys could
    /// mix old and new. The reload that read starts will read it all.
    /// </summary>
    public static IReadOnlyDictionary<string, string>? CaptureIfUnchanged(IConfiguration configuration, string section, string snapshot)
    {
        var keys = Capture(configuration, section);
        return Snapshot(configuration, section) == snapshot ? keys : null;
    }

    /// <summary>Every key with a value under <paramref name="section"/>, relative to it.</summary>
    public static IReadOnlyDictionary<string, string> Capture(IConfiguration configuration, string section)
    {
        var keys = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in configuration.GetSection(section).AsEnumerable(makePathsRelative: true))
        {
            if (value is not null)
            {
                keys[key] = value;
            }
        }

        return keys;
    }

    /// <summary>The changes from <paramref name="before"/> to <paramref name="after"/>, in key order; empty when none.</summary>
    public static string Describe(IReadOnlyDictionary<string, string> before, IReadOnlyDictionary<string, string> after, Func<string, bool> showsValue)
    {
        var items = new SortedDictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var lists = new Dictionary<string, List<string>?>(StringComparer.OrdinalIgnoreCase);
        HashSet<string>? beforeNodes = null, afterNodes = null;
        foreach (var (key, value) in after)
        {
            if (!before.TryGetValue(key, out var old))
            {
                AddNode(items, lists, key, beforeNodes ??= Nodes(before), after, "added", showsValue);
            }
            else if (!string.Equals(old, value, StringComparison.Ordinal))
            {
                items[key] = showsValue(key) ? $"{key}: {Show(old)} -> {Show(value)}" : $"{key}: changed";
            }
        }

        foreach (var key in before.Keys)
        {
            if (!after.ContainsKey(key))
            {
                AddNode(items, lists, key, afterNodes ??= Nodes(after), before, "removed", showsValue);
            }
        }

        // A level added or removed whose keys are all its own list's elements (0, 1, ...), values shown: with them.
        foreach (var (node, elements) in lists)
        {
            if (elements is { Count: > 0 and <= MaxListed })
            {
                var (with, what) = before.ContainsKey(elements[0]) ? (before, "removed") : (after, "added");
                var values = elements.OrderBy(static key => int.Parse(key.AsSpan(key.LastIndexOf(Separator) + 1), System.Globalization.CultureInfo.InvariantCulture)).Select(key => Show(with[key]));
                items[node] = $"{node}: {what} ({string.Join(", ", values)})";
            }
        }

        var shown = items.Values.Take(MaxItems);
        var text = string.Join("; ", shown);
        return items.Count > MaxItems ? $"{text}; and {items.Count - MaxItems} more" : text;
    }

    // A key only one side has: reported at the shallowest level the other side has nothing under (a
    // whole new destination is one item), with its value when that level is the key itself. A level whose keys are all
    // list elements with values shown is noted in lists (null once one of its keys is not).
    private static void AddNode(SortedDictionary<string, string> items, Dictionary<string, List<string>?> lists, string key, HashSet<string> otherSidesNodes, IReadOnlyDictionary<string, string> with, string what, Func<string, bool> showsValue)
    {
        var end = key.IndexOf(Separator, StringComparison.Ordinal);
        while (end >= 0 && otherSidesNodes.Contains(key[..end]))
        {
            end = key.IndexOf(Separator, end + 1);
        }

        if (end < 0)
        {
            items[key] = showsValue(key) ? $"{key}: {what} ({Show(with[key])})" : $"{key}: {what}";
            return;
        }

        var node = key[..end];
        items[node] = $"{node}: {what}";
        var element = showsValue(key) && IsIndex(key.AsSpan(end + 1));
        if (!lists.TryGetValue(node, out var elements))
        {
            lists[node] = element ? [key] : null;
        }
        else if (elements is not null)
        {
            if (element)
            {
                elements.Add(key);
            }
            else
            {
                lists[node] = null;
            }
        }
    }

    private static bool IsIndex(ReadOnlySpan<char> name) => name.Length is > 0 and <= 9 && !name.ContainsAnyExceptInRange('0', '9');

    // Every level that has keys under it ("Clusters", "Clusters:api", ...).
    private static HashSet<string> Nodes(IReadOnlyDictionary<string, string> keys)
    {
        var nodes = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var key in keys.Keys)
        {
            for (var end = key.IndexOf(Separator, StringComparison.Ordinal); end >= 0; end = key.IndexOf(Separator, end + 1))
            {
                nodes.Add(key[..end]);
            }
        }

        return nodes;
    }

    private static string Show(string value)
        => value.Length <= MaxValueLength ? $"'{value}'" : $"'{value[..MaxValueLength]}...'";
}
