using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Primitives;

namespace YarpGateway.OutputCaching;

/// <summary>
/// The part of an entry's key that comes from the query: its parameters as the client sent them (each name with its case,
/// each value as encoded, and a name's repeated values in their order), sorted by name so that the order of different
/// parameters does not matter; with <c>VaryByQuery</c>, only the parameters it names (matched without regard to case, as
/// ASP.NET Core matches them, but kept with the case they were sent in). ASP.NET Core's own key upper-cases names and sorts
/// a name's values, so <c>?ID=5</c>, which a backend that reads <c>id</c> answers as if there were no <c>id</c>, had that
/// answer stored for every <c>?id=5</c>, and <c>?id=2&amp;id=1</c> for <c>?id=1&amp;id=2</c>: anyone could fill an entry
/// with the wrong page for the entry's lifetime. Different keys here cost a miss at worst.
/// </summary>
internal static class OutputCacheQueryKey
{
    /// <summary>The name of the value in <c>CacheVaryByRules.VaryByValues</c> that carries the query's part of the key.</summary>
    public const string ValueName = "query";

    /// <summary>The query's part of the key, or null when no parameter goes into it.</summary>
    public static string? Of(QueryString query, StringValues names)
    {
        if (!query.HasValue || query.Value!.Length <= 1)
        {
            return null;
        }

        List<(string Name, string Pair)>? pairs = null;
        foreach (var pair in new QueryStringEnumerable(query.Value))
        {
            if (names.Count > 0 && !IsListed(names, pair.DecodeName().Span))
            {
                continue;
            }

            var name = pair.EncodedName.ToString();
            pairs ??= [];
            pairs.Add((name, pair.EncodedValue.Length == 0 ? name : string.Concat(name, "=", pair.EncodedValue.Span)));
        }

        if (pairs is null)
        {
            return null;
        }

        if (pairs.Count == 1)
        {
            return pairs[0].Pair;
        }

        // Stable: a name's values keep their order.
        var sorted = pairs.Select((pair, index) => (pair.Name, pair.Pair, Index: index))
            .OrderBy(pair => pair.Name, StringComparer.Ordinal).ThenBy(pair => pair.Index);
        return string.Join('&', sorted.Select(pair => pair.Pair));
    }

    private static bool IsListed(StringValues names, ReadOnlySpan<char> name)
    {
        foreach (var candidate in names)
        {
            if (name.Equals(candidate, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }
}
