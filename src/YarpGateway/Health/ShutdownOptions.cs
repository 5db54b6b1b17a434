namespace YarpGateway.Health;

/// <summary>Options under <c>Gateway:Shutdown</c>: how SIGTERM is handled.</summary>
internal sealed class ShutdownOptions
{
    public const string SectionName = "Gateway:Shutdown";

    /// <summary>After SIGTERM, readiness answers 503 but the gateway keeps accepting and serving for this long, while Kubernetes removes it from its endpoints. Default 5 s.</summary>
    public TimeSpan DrainDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Then it stops accepting and lets in-flight requests finish for at most this long. Default 30 s.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);
}
