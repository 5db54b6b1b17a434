namespace YarpGateway.OutputCaching;

/// <summary>
/// <c>Gateway:OutputCache</c>: the output-cache policies a route names in <c>OutputCachePolicy</c>, on
/// ASP.NET Core's output-caching middleware and its in-memory store. The policies' settings reload
/// (<see cref="OutputCachePolicies"/>); which policies exist and the sizes are read at start-up.
/// </summary>
internal sealed class GatewayOutputCacheOptions
{
    public const string SectionName = "Gateway:OutputCache";

    /// <summary>The most the cache holds, in bytes, over all policies; the least recently used entries go first. Default 100 MiB.</summary>
    public long SizeLimit { get; set; } = 100 * 1024 * 1024;

    /// <summary>A larger response is not cached. Default 1 MiB.</summary>
    public long MaximumBodySize { get; set; } = 1024 * 1024;

    /// <summary>Policies by name (case-insensitive). Default: none, and then no output-caching middleware runs.</summary>
    public Dictionary<string, OutputCachePolicySettings> Policies { get; set; } = new(StringComparer.OrdinalIgnoreCase);
}

/// <summary>
/// One policy. ASP.NET Core's defaults apply underneath: only GET and HEAD, only 200 responses, never
/// a request with an <c>Authorization</c> header or a response with <c>Set-Cookie</c>; and the gateway
/// adds: never a response whose <c>Cache-Control</c> says <c>private</c>, <c>no-store</c> or <c>no-cache</c>, nor one
/// whose <c>Vary</c> names a header not in <see cref="VaryByHeader"/>, and by default never a request with a
/// <c>Cookie</c> header (<see cref="CacheRequestsWithCookies"/>).
/// </summary>
internal sealed class OutputCachePolicySettings
{
    /// <summary>How long an entry is served when the response has no <c>s-maxage</c> or <c>max-age</c>. Default 1 minute.</summary>
    public TimeSpan Duration { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Query parameters that make separate entries. Empty (the default): every parameter does.</summary>
    public List<string> VaryByQuery { get; set; } = [];

    /// <summary>Request headers that make separate entries. Default: none. A response whose <c>Vary</c> names a header not listed here is not stored.</summary>
    public List<string> VaryByHeader { get; set; } = [];

    /// <summary>
    /// Whether requests that miss wait for the one request already fetching the same entry, and are then answered from
    /// it, instead of each going to the backend. Default false: a waiting request waits for that request's whole
    /// response, so a stream, a long poll or a large download to a slow client would hold every other client of its
    /// URL (nginx's <c>proxy_cache_lock</c> is off by default too). For routes whose responses are all short.
    /// </summary>
    public bool Locking { get; set; }

    /// <summary>
    /// Whether a request with a <c>Cookie</c> header may be answered from the cache and its response stored. Default
    /// false: such a request skips the cache, as Varnish's default does, since a page a backend builds from a session
    /// cookie, without <c>Cache-Control: private</c>, would otherwise be served to every client of its URL. Set it for
    /// routes whose answers do not depend on cookies (browsers send analytics cookies with everything); listing
    /// <c>Cookie</c> in <see cref="VaryByHeader"/> instead caches one entry per cookie value.
    /// </summary>
    public bool CacheRequestsWithCookies { get; set; }
}
