namespace YarpGateway.Endpoints;

/// <summary>What HttpClient will speak to a destination, as far as it is known before the request goes.</summary>
internal static class BackendHttpVersion
{
    /// <summary>
    /// Whether the backend connection is HTTP/1.1 for certain. Without TLS there is no ALPN: HTTP/2 only with prior
    /// knowledge (2.0 and a policy other than RequestVersionOrLower, which is YARP's default). With TLS, only when
    /// the cluster asks for 1.x and does not allow higher; otherwise ALPN decides.
    /// </summary>
    public static bool IsHttp11(string destinationPrefix, Version version, HttpVersionPolicy policy)
        => destinationPrefix.StartsWith("http://", StringComparison.OrdinalIgnoreCase)
            ? version.Major < 2 || policy == HttpVersionPolicy.RequestVersionOrLower
            : version.Major < 2 && policy != HttpVersionPolicy.RequestVersionOrHigher;
}
