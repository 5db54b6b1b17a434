using System.Globalization;

namespace YarpGateway.Configuration;

/// <summary>
/// The times the gateway reads, all of which end up in a timer, a delay or a timeout: none may be longer than
/// <see cref="Max"/>. A longer one failed at first use (tried, 60 days): a route's <c>TryTimeout</c> made every request
/// 500, a cluster's <c>ConnectTimeout</c> failed YARP's apply (which froze routing), and a <c>Gateway:*</c> time ended
/// the process at start. Nor may one be a number alone, other than 0: .NET reads <c>"30"</c> as 30 days, where an
/// operator used to nginx means 30 seconds (tried: a health check <c>Interval</c> of <c>"10"</c> and a route
/// <c>Timeout</c> of <c>"3"</c> passed <c>--check</c> as 10 and 3 days). Days are written <c>30.00:00:00</c>.
/// </summary>
internal static class TimeSpans
{
    /// <summary>int.MaxValue milliseconds, to the second: the longest .NET's timers, delays and timeouts take.</summary>
    public static readonly TimeSpan Max = TimeSpan.FromSeconds(int.MaxValue / 1000);

    /// <summary>"24.20:31:23", as errors say it.</summary>
    public static readonly string MaxText = Max.ToString("c", CultureInfo.InvariantCulture);

    /// <summary>A time in a route's or cluster's <c>Metadata</c>: above <paramref name="minimum"/> (or at least it, with <paramref name="inclusive"/>), and at most <see cref="Max"/>.</summary>
    public static bool TryParse(string? text, out TimeSpan value, TimeSpan minimum = default, bool inclusive = false)
        => TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out value)
            && !IsDaysAlone(text, value)
            && (inclusive ? value >= minimum : value > minimum)
            && value <= Max;

    /// <summary>
    /// Whether <paramref name="text"/>, read as <paramref name="value"/>, is a number of days alone (<c>"30"</c>): .NET
    /// takes it, and few who write it mean days. 0 is 0 in any unit.
    /// </summary>
    public static bool IsDaysAlone(string? text, TimeSpan value) => value != TimeSpan.Zero && text is not null && !text.Contains(':');

    /// <summary>Whether a configuration value is a time span written as a number of days alone (see <see cref="IsDaysAlone(string?, TimeSpan)"/>).</summary>
    public static bool IsDaysAlone(string? text) => TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var value) && IsDaysAlone(text, value);

    /// <summary>
    /// The error for a time value that is not <paramref name="expected"/>; for a number alone, what it would have meant and
    /// how to write what was likely meant: "'30' would be read as 30 days (...): write 00:00:30 for 30 seconds, ...".
    /// </summary>
    public static string Refusal(string? text, string expected)
    {
        if (!IsDaysAlone(text) || !double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) || number is < 0 or > 1e6)
        {
            return $"'{text}' is not {expected}.";
        }

        var seconds = TimeSpan.FromSeconds(number).ToString("c", CultureInfo.InvariantCulture);
        var minutes = TimeSpan.FromMinutes(number).ToString("c", CultureInfo.InvariantCulture);
        var days = TimeSpan.FromDays(number).ToString("c", CultureInfo.InvariantCulture);
        var plural = number == 1 ? string.Empty : "s";
        return $"'{text}' would be read as {text} day{plural} (a number alone is days in a .NET time span): write {seconds} for {text} second{plural}, {minutes} for {text} minute{plural}, or {days} if days are meant.";
    }

    /// <summary>What a positive time is, for an error: "a positive time span of at most 24.20:31:23 (e.g. 00:00:01)".</summary>
    public static string Positive(string example) => $"a positive time span of at most {MaxText} (e.g. {example})";
}
