namespace YarpGateway.Health;

/// <summary>Options under <c>Gateway:Health</c>.</summary>
internal sealed class HealthOptions
{
    public const string SectionName = "Gateway:Health";

    /// <summary>
    /// Readiness also requires every cluster to have at least one available destination.
    /// Default <c>true</c>. Turn off when one broken backend must not take the whole gateway out of rotation.
    /// </summary>
    public bool RequireAvailableDestinations { get; set; } = true;
}
