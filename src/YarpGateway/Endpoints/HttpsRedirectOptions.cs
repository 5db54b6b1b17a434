namespace YarpGateway.Endpoints;

/// <summary>
/// Options under <c>Gateway:HttpsRedirect</c>: where the optional <c>HttpsRedirect</c> endpoint
/// (<c>Kestrel:Endpoints:HttpsRedirect</c>, plain HTTP) sends every request. Read at start-up.
/// </summary>
internal sealed class HttpsRedirectOptions
{
    public const string SectionName = "Gateway:HttpsRedirect";

    /// <summary>
    /// The port of the https:// address each request is sent to: the one clients reach the Proxy endpoint on (a
    /// Service's or load balancer's port, not the pod's). 443, the default, is left out of the address.
    /// </summary>
    public int Port { get; set; } = 443;

    /// <summary>
    /// Connections open at once on the endpoint; one more is closed at once. The endpoint is public and outside the proxy's
    /// connection admission and open-file share: without a cap, clients that open connections and send nothing (each held
    /// up to Kestrel's <c>RequestHeadersTimeout</c>) could take the descriptors the proxy needs. Each answer closes its
    /// connection, so a browser holds one for a moment. Default 1,000.
    /// </summary>
    public int MaxConnections { get; set; } = 1000;
}
