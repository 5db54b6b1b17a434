namespace YarpGateway.Telemetry;

/// <summary>
/// <see cref="TelemetryOptions.MaxSeriesPerMetric"/> as read once at start, for everything that must agree with the
/// meter provider's view on it: the view itself (<see cref="MetricsExport"/>), <see cref="SeriesLimitCheck"/> and the
/// per-destination instruments' replacement.
/// </summary>
internal sealed record MetricSeriesLimit(int MaxSeries);
