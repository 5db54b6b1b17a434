namespace YarpGateway.Admission;

/// <summary>Options under <c>Gateway:Admission</c>. Every default is documented in docs/configuration.md.</summary>
internal sealed class AdmissionOptions
{
    public const string SectionName = "Gateway:Admission";

    /// <summary>The limit every proxied request passes first. Default 4096 concurrent, 8192 queued, 5 s queue timeout.</summary>
    public ConcurrencyLimitOptions Global { get; set; } = new() { MaxConcurrency = 4096, MaxQueue = 8192, QueueTimeout = TimeSpan.FromSeconds(5) };

    /// <summary>
    /// The most of the global limit's slots the requests to one cluster may hold, when the configuration has more
    /// than one cluster and that cluster sets no <c>MaxConcurrency</c> of its own; past it, its further requests get
    /// 503 at once (<c>limit="cluster_share"</c>), so that one slow or unresponsive backend cannot take every slot from
    /// the others. Default 0.5 (2,048 of the default 4,096); 1 turns it off.
    /// </summary>
    public double ClusterShare { get; set; } = 0.5;

    /// <summary>
    /// The most of the global limit's slots that requests still receiving their body may hold (a request whose whole body
    /// came with its head is not one, and one gives its slot of this share back when its response starts); past it,
    /// such further requests get 503 at once (<c>limit="upload_share"</c>), so that clients sending bodies slowly (a
    /// slow-POST attack, at Kestrel's minimum of 240 bytes a second each) cannot take every slot from everyone else.
    /// Default 0.5 (2,048 of the default 4,096); 1 turns it off.
    /// </summary>
    public double UploadShare { get; set; } = 0.5;

    /// <summary>The <c>Retry-After</c> sent with a 503 from a concurrency limit. Default 1 s; whole seconds on the wire.</summary>
    public TimeSpan RetryAfter { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Throttling of new connections on the proxy endpoint.</summary>
    public ConnectionAdmissionOptions Connections { get; set; } = new();

    /// <summary>Optional rate limit on WebSocket (and other) upgrades. Off by default.</summary>
    public UpgradeAdmissionOptions Upgrades { get; set; } = new();

    /// <summary>Kestrel's <c>Limits.MaxConcurrentConnections</c>, for all endpoints. Default null: unlimited.</summary>
    public long? MaxConcurrentConnections { get; set; }

    /// <summary>Kestrel's <c>Limits.MaxConcurrentUpgradedConnections</c>. Default null: unlimited.</summary>
    public long? MaxConcurrentUpgradedConnections { get; set; }
}

/// <summary>A concurrency limit with a bounded FIFO queue.</summary>
internal sealed class ConcurrencyLimitOptions
{
    /// <summary>Requests served at once; 0 turns this limit off.</summary>
    public int MaxConcurrency { get; set; }

    /// <summary>Requests that may wait for a slot; 0 rejects at once when all slots are taken.</summary>
    public int MaxQueue { get; set; }

    /// <summary>How long a request may wait in the queue before it gets 503.</summary>
    public TimeSpan QueueTimeout { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>Options under <c>Gateway:Admission:Connections</c>.</summary>
internal sealed class ConnectionAdmissionOptions
{
    /// <summary>
    /// A fixed ceiling on new connections taken on per second (token bucket refill rate); 0 (the
    /// default) sets none. With <see cref="Adaptive"/> on, the adaptive rate never exceeds it; with it
    /// off, this is the rate (0 turns rate throttling off; 1000 per CPU was the default before the
    /// adaptive rate).
    /// </summary>
    public int RatePerSecond { get; set; }

    /// <summary>The rate set by how late the gateway is (on by default).</summary>
    public AdaptiveAdmissionOptions Adaptive { get; set; } = new();

    /// <summary>Connections that may be taken on at once before the rate applies (bucket size). Default 100 per CPU.</summary>
    public int Burst { get; set; } = 100 * Environment.ProcessorCount;

    /// <summary>
    /// Connections that may be in their first request at once; 0 turns the cap off. Default 1000.
    /// A connection takes its slot when its first bytes arrive (one that sends nothing holds none)
    /// and frees it when its first request goes to a backend (or its first response starts, for the gateway's own
    /// answers), or after <see cref="MaxFirstRequestTime"/>.
    /// </summary>
    public int MaxFirstRequestConnections { get; set; } = 1000;

    /// <summary>
    /// The longest a connection holds its first-request slot; the connection itself stays open and is
    /// served as usual. Default 1 s. It keeps slow clients (and slow first responses) from holding
    /// every slot: that now takes <see cref="MaxFirstRequestConnections"/> / this time new
    /// connections a second (1000 by default).
    /// </summary>
    public TimeSpan MaxFirstRequestTime { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Where the rate applies. True (the default): on the proxy endpoint's accept. While the bucket is
    /// empty the gateway accepts nothing, and new connections wait in the kernel's listen queue
    /// (<c>Gateway:Transport:Backlog</c> deep), where they cost the gateway nothing: a storm's
    /// connections are set up at the pace the gateway absorbs, not all at once. Once that queue is
    /// three quarters full, connections are taken in to wait for their token in the gateway, rather
    /// than have the kernel drop new clients' handshakes. False: every
    /// connection is accepted at once and waits in the gateway for its token, bounded by
    /// <see cref="MaxWait"/> and <see cref="MaxWaiting"/>.
    /// </summary>
    public bool PaceAccept { get; set; } = true;

    /// <summary>
    /// The most new connections the accept window lets in at once, while in their first request; 0 turns the
    /// window off. Default 64 per CPU. With the adaptive rate and <see cref="PaceAccept"/> (the defaults), and no
    /// <see cref="RatePerSecond"/> ceiling, a connection is accepted when a place in the window is free, and holds
    /// it until its first request goes to a backend while the gateway keeps up (its measured delay under half
    /// <c>Adaptive:TargetDelay</c>), otherwise until its first response starts; or until it ends, or
    /// <see cref="MaxFirstRequestTime"/> passes from its first bytes (or from its accept while it sends nothing): a
    /// storm is taken on as fast as the gateway answers new connections, each answer letting the next one in, and a
    /// backend slow to answer does not hold new connections to the window's size per answer's time. The window's size follows the delay the adaptive rate measures (cut to 70 % over
    /// <c>Adaptive:TargetDelay</c>, grown by a quarter under half of it while full), from an eighth of this to this.
    /// Once no place has been taken for 100 ms (slow first responses, silent clients), the rate's tokens admit too.
    /// </summary>
    public int AcceptWindow { get; set; } = 64 * Environment.ProcessorCount;

    /// <summary>
    /// How long a new connection may wait in the gateway to be taken on (for a first-request slot, and
    /// for a token when <see cref="PaceAccept"/> is off) before it is closed. Default 10 s.
    /// </summary>
    public TimeSpan MaxWait { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>New connections that may wait in the gateway at once; more are closed immediately. Default 20000.</summary>
    public int MaxWaiting { get; set; } = 20_000;

    /// <summary>
    /// Proxy connections open at once, WebSockets included; at the limit the gateway accepts nothing
    /// and new clients wait in the kernel's listen queue until a connection closes. Default (null):
    /// what the process's open-file limit allows, half of it after the process's own share
    /// (<see cref="Endpoints.OpenConnectionLimit.FromOpenFileLimit"/>), since each connection may hold a backend
    /// connection too; no limit where the open-file limit is unlimited. Read at start.
    /// </summary>
    public int? MaxOpen { get; set; }

    /// <summary>
    /// Proxy connections one client may hold open at once (a client is its address, an IPv6 client its /64), in the manner
    /// of nginx's <c>limit_conn</c> (which counts only connections with a request in progress; this counts every open one
    /// from its first bytes on); past it, that client's new connection is closed as soon as it has sent them. 0 (the
    /// default): no limit. Only where the gateway sees clients' own addresses: behind a load balancer that hides them
    /// (a Kubernetes Service with <c>externalTrafficPolicy: Cluster</c>), every client shares a few addresses; see
    /// <c>Gateway:ProxyProtocol</c>.
    /// </summary>
    public int MaxPerClientAddress { get; set; }
}

/// <summary>
/// Options under <c>Gateway:Admission:Connections:Adaptive</c>: new connections are taken on as fast as
/// the gateway stays under <see cref="TargetDelay"/>. Defaults scale with the CPUs the process may use.
/// </summary>
internal sealed class AdaptiveAdmissionOptions
{
    /// <summary>Whether the adaptive rate runs. Default true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// The delay the controller keeps under: the thread pool's queueing delay and the socket engine's
    /// (the scheduler and socket-engine probes). Default 20 ms.
    /// </summary>
    public TimeSpan TargetDelay { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>
    /// The delay kept under while connections past their first request (keep-alive clients, an HTTP/2 connection's
    /// later streams) are busy, that is send at least <see cref="EstablishedRequestRate"/> requests a second: new
    /// connections are then taken on only as fast as the open ones' requests keep this pace. A churn of new
    /// connections alone has nobody to protect, and keeps <see cref="TargetDelay"/>. Default (none set): a quarter of
    /// <see cref="TargetDelay"/>, 5 ms; at most <see cref="TargetDelay"/>.
    /// </summary>
    public TimeSpan? EstablishedTargetDelay { get; set; }

    /// <summary>
    /// Requests a second from connections past their first request at which <see cref="EstablishedTargetDelay"/> applies,
    /// until a second has passed without them; 0: always. Default 100.
    /// </summary>
    public int EstablishedRequestRate { get; set; } = 100;

    /// <summary><see cref="EstablishedTargetDelay"/>, or its default.</summary>
    internal TimeSpan EstablishedTarget => EstablishedTargetDelay ?? TargetDelay / 4;

    /// <summary>The rate to start from, and to drift back to when nobody waits. Default 1000 per CPU.</summary>
    public int InitialRate { get; set; } = 1000 * Environment.ProcessorCount;

    /// <summary>The least the rate is cut to. Default 100 per CPU.</summary>
    public int MinRate { get; set; } = 100 * Environment.ProcessorCount;

    /// <summary>The most the rate grows to (and never above a non-zero <c>RatePerSecond</c>). Default 50,000 per CPU.</summary>
    public int MaxRate { get; set; } = 50_000 * Environment.ProcessorCount;
}

/// <summary>Options under <c>Gateway:Admission:Upgrades</c>.</summary>
internal sealed class UpgradeAdmissionOptions
{
    /// <summary>Upgrades accepted per second; 0 (default) turns the upgrade limit off.</summary>
    public int RatePerSecond { get; set; }

    /// <summary>Upgrades that may be accepted at once before the rate applies. Default 100.</summary>
    public int Burst { get; set; } = 100;

    /// <summary>Lower bound of the jittered <c>Retry-After</c> for a rejected upgrade. Default 1 s.</summary>
    public TimeSpan RetryAfterMin { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Upper bound of the jittered <c>Retry-After</c> for a rejected upgrade. Default 10 s.</summary>
    public TimeSpan RetryAfterMax { get; set; } = TimeSpan.FromSeconds(10);
}
