namespace YarpGateway.Resilience;

/// <summary>Options under <c>Gateway:Resilience</c>: defaults for every cluster; routes and clusters override some in <c>Metadata</c>.</summary>
internal sealed class ResilienceOptions
{
    public const string SectionName = "Gateway:Resilience";

    /// <summary>Retries after the first attempt (metadata <c>MaxRetries</c>). Default 2; 0 turns retries off.</summary>
    public int MaxRetries { get; set; } = 2;

    /// <summary>The statuses retried when <see cref="RetryStatusCodes"/> is not set.</summary>
    public static readonly IReadOnlyList<int> DefaultRetryStatusCodes = [502, 503, 504];

    /// <summary>
    /// Backend statuses that are retried (metadata <c>RetryStatusCodes</c>, e.g. "502,503"). Default
    /// <see cref="DefaultRetryStatusCodes"/>. Null rather than initialised: the configuration binder
    /// appends to an initialised array, so <c>[503]</c> would otherwise still retry 502 and 504.
    /// </summary>
    public int[]? RetryStatusCodes { get; set; }

    public IReadOnlyList<int> EffectiveRetryStatusCodes => RetryStatusCodes ?? DefaultRetryStatusCodes;

    /// <summary>First backoff delay; doubles each retry, with jitter. Default 25 ms.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(25);

    /// <summary>Longest backoff delay. Default 1 s.</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Request bodies up to this size are buffered so that they can be resent; 0 (default) never buffers.</summary>
    public int MaxRetryBodyBytes { get; set; }

    /// <summary>Time one attempt may take until its response starts (metadata <c>TryTimeout</c>). Default none.</summary>
    public TimeSpan? TryTimeout { get; set; }

    /// <summary>Time to establish a connection to a destination (cluster metadata <c>ConnectTimeout</c>). Default 2 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long a pooled backend connection is reused before it is replaced by a new one (cluster
    /// metadata <c>PooledConnectionLifetime</c>). Default 2 minutes. Behind a Kubernetes Service
    /// address, connections that never rotate stay pinned to the pods they first reached, and pods
    /// added by a scale-out get no share of them. Upgraded (WebSocket) connections are not pooled
    /// and live as long as their WebSocket.
    /// </summary>
    public TimeSpan PooledConnectionLifetime { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Request bodies larger than this many bytes, or chunked, go to a backend reached over HTTP/1.1 with
    /// <c>Expect: 100-continue</c>, so that its answer before the body (413, 401) reaches the client instead of a 502
    /// (cluster metadata <c>ExpectContinueAbove</c>). Default 65,536; 0 turns it off. See
    /// <see cref="ExpectContinueTransformProvider"/>.
    /// </summary>
    public long ExpectContinueAbove { get; set; } = 64 * 1024;

    /// <summary>How many retries a cluster may add.</summary>
    public RetryBudgetOptions RetryBudget { get; set; } = new();
}

/// <summary>Options under <c>Gateway:Resilience:RetryBudget</c>.</summary>
internal sealed class RetryBudgetOptions
{
    /// <summary>Retries may add at most this share of a cluster's requests over <see cref="Window"/>. Default 0.2 (20 %).</summary>
    public double Ratio { get; set; } = 0.2;

    /// <summary>Retries allowed per second whatever the traffic, so a quiet cluster can still retry. Default 3.</summary>
    public int MinRetriesPerSecond { get; set; } = 3;

    /// <summary>The sliding window, in whole seconds. Default 10 s.</summary>
    public TimeSpan Window { get; set; } = TimeSpan.FromSeconds(10);
}
