namespace YarpGateway.Telemetry;

/// <summary>
/// Which of the platform's instruments updated on every request are exported, as read at start:
/// <see cref="TelemetryOptions.PerRequestGauges"/> and <see cref="TelemetryOptions.PlatformRequestDurations"/>.
/// </summary>
internal readonly record struct PlatformInstruments(bool PerRequestGauges, bool RequestDurations);
