using System.Globalization;
using YarpGateway.Configuration;

namespace YarpGateway.Resilience;

/// <summary>
/// Settings of the <c>OutlierEjection</c> passive health policy, from cluster <c>Metadata</c>:
/// <c>OutlierEjection.ConsecutiveFailures</c> (default 5),
/// <c>OutlierEjection.ConsecutiveConnectFailures</c> (refused or timed-out connects in a row, default 3),
/// <c>OutlierEjection.FailureRate</c>
/// (0 to 1, default 0.5), <c>OutlierEjection.MinimumRequests</c> (in the window, default 20),
/// <c>OutlierEjection.Window</c> (default 00:00:10), <c>OutlierEjection.MaxEjectedPercent</c>
/// (default 50). The reactivation period is YARP's own <c>HealthCheck.Passive.ReactivationPeriod</c>
/// (default here 00:00:30).
/// </summary>
internal sealed record OutlierEjectionSettings(int ConsecutiveFailures, int ConsecutiveConnectFailures, double FailureRate, int MinimumRequests, TimeSpan Window, int MaxEjectedPercent, TimeSpan ReactivationPeriod)
{
    public const string Prefix = "OutlierEjection.";

    private const string ConsecutiveFailuresName = "ConsecutiveFailures";
    private const string ConsecutiveConnectFailuresName = "ConsecutiveConnectFailures";
    private const string FailureRateName = "FailureRate";
    private const string MinimumRequestsName = "MinimumRequests";
    private const string WindowName = "Window";
    private const string MaxEjectedPercentName = "MaxEjectedPercent";

    /// <summary>The settings' names, after <see cref="Prefix"/>.</summary>
    public static readonly string[] Names = [ConsecutiveFailuresName, ConsecutiveConnectFailuresName, FailureRateName, MinimumRequestsName, WindowName, MaxEjectedPercentName];
    public static readonly TimeSpan DefaultReactivationPeriod = TimeSpan.FromSeconds(30);

    public static OutlierEjectionSettings From(Yarp.ReverseProxy.Configuration.ClusterConfig cluster)
    {
        var metadata = cluster.Metadata;
        return new OutlierEjectionSettings(
            Int(metadata, ConsecutiveFailuresName, 5),
            Int(metadata, ConsecutiveConnectFailuresName, 3),
            Double(metadata, FailureRateName, 0.5),
            Int(metadata, MinimumRequestsName, 20),
            Time(metadata, WindowName, TimeSpan.FromSeconds(10)),
            Int(metadata, MaxEjectedPercentName, 50),
            cluster.HealthCheck?.Passive?.ReactivationPeriod ?? DefaultReactivationPeriod);
    }

    public static void Validate(IReadOnlyDictionary<string, string>? metadata, string key, ICollection<ConfigError> errors)
    {
        if (metadata is null)
        {
            return;
        }

        Check(metadata, ConsecutiveFailuresName, v => int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 1, "a whole number of at least 1", key, errors);
        Check(metadata, ConsecutiveConnectFailuresName, v => int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 1, "a whole number of at least 1", key, errors);
        Check(metadata, FailureRateName, v => double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d is > 0 and <= 1, "a share from above 0 to 1 (0.5 = 50 %)", key, errors);
        Check(metadata, MinimumRequestsName, v => int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 1, "a whole number of at least 1", key, errors);
        if (metadata.TryGetValue(Prefix + WindowName, out var window) && !TimeSpans.TryParse(window, out _, TimeSpan.FromSeconds(1), inclusive: true))
        {
            errors.Add(new ConfigError($"{key}:{Prefix}{WindowName}", TimeSpans.Refusal(window, $"a time span from 00:00:01 to {TimeSpans.MaxText}")));
        }

        Check(metadata, MaxEjectedPercentName, v => int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n <= 100, "a whole number from 0 to 100", key, errors);
    }

    private static void Check(IReadOnlyDictionary<string, string> metadata, string name, Func<string, bool> valid, string expected, string key, ICollection<ConfigError> errors)
    {
        if (metadata.TryGetValue(Prefix + name, out var value) && !valid(value))
        {
            errors.Add(new ConfigError($"{key}:{Prefix}{name}", $"'{value}' is not {expected}."));
        }
    }

    private static int Int(IReadOnlyDictionary<string, string>? m, string name, int fallback)
        => m is not null && m.TryGetValue(Prefix + name, out var v) && int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : fallback;

    private static double Double(IReadOnlyDictionary<string, string>? m, string name, double fallback)
        => m is not null && m.TryGetValue(Prefix + name, out var v) && double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : fallback;

    private static TimeSpan Time(IReadOnlyDictionary<string, string>? m, string name, TimeSpan fallback)
        => m is not null && m.TryGetValue(Prefix + name, out var v) && TimeSpans.TryParse(v, out var t, inclusive: true) ? t : fallback;
}
