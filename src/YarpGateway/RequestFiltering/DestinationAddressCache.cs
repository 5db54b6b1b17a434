using Yarp.ReverseProxy.Forwarder;

namespace YarpGateway.RequestFiltering;

/// <summary>
/// The backend request's address for a destination, path and query seen before. YARP builds a new <see cref="Uri"/> for
/// every request (the string concatenated, then parsed), and <c>SocketsHttpHandler</c> asks each new one for its host
/// and its path and query as strings: about 330 bytes and a parse per request, the same for every request to the same
/// path. A <see cref="Uri"/> is immutable, so one can serve every request with the same address, its host and path
/// computed once.
/// <para>
/// A fixed table of <see cref="Slots"/> entries, one per hash slot, each replaced by the next address that lands there:
/// nothing to evict and a bounded size. An address is kept only on its second miss in a row in its slot, so traffic whose
/// paths never repeat (identifiers in the path, a query unique per request) allocates no entries, only what YARP would;
/// and only for a path and query of at most <see cref="MaxKeyLength"/> characters, so the table holds at most about
/// 2 MB. Read and replaced without a lock: an entry is immutable, and a slot is one reference.
/// </para>
/// </summary>
internal sealed class DestinationAddressCache
{
    internal const int Slots = 1024;
    internal const int MaxKeyLength = 256;

    private readonly Entry?[] _entries = new Entry?[Slots];
    private readonly int[] _missed = new int[Slots];

    /// <summary>The address YARP would build, <c>RequestUtilities.MakeDestinationAddress</c>'s, from the table when it holds it.</summary>
    public Uri Get(string prefix, PathString path, QueryString query)
    {
        var pathValue = path.Value ?? string.Empty;
        var queryValue = query.Value ?? string.Empty;
        if (pathValue.Length + queryValue.Length > MaxKeyLength)
        {
            return RequestUtilities.MakeDestinationAddress(prefix, path, query);
        }

        var hash = HashCode.Combine(prefix, pathValue, queryValue);
        var slot = hash & (Slots - 1);
        if (Volatile.Read(ref _entries[slot]) is { } entry && entry.Hash == hash
            && string.Equals(entry.Prefix, prefix, StringComparison.Ordinal)
            && string.Equals(entry.Path, pathValue, StringComparison.Ordinal)
            && string.Equals(entry.Query, queryValue, StringComparison.Ordinal))
        {
            return entry.Address;
        }

        var address = RequestUtilities.MakeDestinationAddress(prefix, path, query);
        if (Interlocked.Exchange(ref _missed[slot], hash) == hash)
        {
            Volatile.Write(ref _entries[slot], new Entry(hash, prefix, pathValue, queryValue, address));
        }

        return address;
    }

    private sealed record Entry(int Hash, string Prefix, string Path, string Query, Uri Address);
}
