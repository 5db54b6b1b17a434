namespace YarpGateway.Health;

/// <summary>Options under <c>Gateway:Health</c>.</summary>
internal sealed class HealthOptions
{
    public const string SectionName = "Gateway:Health";

    /// <summary>
    /// Removed: readiness no longer depends on backends unless a cluster opts in with
    /// <c>Metadata: { "ReadinessRequiresDestination": "true" }</c>. Still read, so that a configuration
    /// that sets it starts (a rolling update must not crash on it) with a warning saying what to do.
    /// </summary>
    public bool? RequireAvailableDestinations { get; set; }
}
