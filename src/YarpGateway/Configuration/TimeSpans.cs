using System.Globalization;

namespace YarpGateway.Configuration;

/// <summary>
/// The times the gateway reads, all of which end up in a timer, a delay or a timeout: none may be longer than
/// <see cref="Max"/>. A longer one failed at first use (tried, 60 days): a route's <c>TryTimeout</c> made every request
/// 500, a cluster's <c>ConnectTimeout</c> failed YARP's apply (which froze routing), and a <c>Gateway:*</c> time ended
/// the process at start.
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
            && (inclusive ? value >= minimum : value > minimum)
            && value <= Max;

    /// <summary>What a positive time is, for an error: "a positive time span of at most 24.20:31:23 (e.g. 00:00:01)".</summary>
    public static string Positive(string example) => $"a positive time span of at most {MaxText} (e.g. {example})";
}
