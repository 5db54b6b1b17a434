namespace YarpGateway.Telemetry;

/// <summary>
/// The name of the gateway's meter. Each feature creates its instruments on it from
/// <see cref="System.Diagnostics.Metrics.IMeterFactory"/> (which hands every caller the same meter),
/// in a metrics class of its own, as ASP.NET Core's <c>KestrelMetrics</c> and <c>RateLimitingMetrics</c> do.
/// </summary>
internal static class GatewayMeter
{
    public const string Name = "YarpGateway";
}
