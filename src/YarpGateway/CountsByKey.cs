using System.Collections.Concurrent;

namespace YarpGateway;

/// <summary>
/// How many of something each key holds now (a rate-limit partition's live limiters, a client address's open
/// connections), without a lock; a key is held only while its count is above zero, so the keys are exactly those
/// with one.
/// </summary>
internal sealed class CountsByKey
{
    private readonly ConcurrentDictionary<string, int> _counts = new(StringComparer.Ordinal);

    /// <summary>Keys with a count now (takes the dictionary's locks: not for a hot path).</summary>
    public int Keys => _counts.Count;

    public bool Contains(string key) => _counts.ContainsKey(key);

    /// <summary>One more for <paramref name="key"/>, unless it holds <paramref name="max"/> already; <paramref name="first"/>: it held none.</summary>
    public bool TryAdd(string key, int max, out bool first)
    {
        while (true)
        {
            if (_counts.TryGetValue(key, out var count))
            {
                first = false;
                if (count >= max)
                {
                    return false;
                }

                if (_counts.TryUpdate(key, count + 1, count))
                {
                    return true;
                }
            }
            else if (_counts.TryAdd(key, 1))
            {
                first = true;
                return true;
            }
        }
    }

    /// <summary>One fewer for <paramref name="key"/>; true when that was its last (the key is gone).</summary>
    public bool Remove(string key)
    {
        while (_counts.TryGetValue(key, out var count))
        {
            if (count <= 1 ? _counts.TryRemove(KeyValuePair.Create(key, count)) : _counts.TryUpdate(key, count - 1, count))
            {
                return count <= 1;
            }
        }

        return false;
    }
}
