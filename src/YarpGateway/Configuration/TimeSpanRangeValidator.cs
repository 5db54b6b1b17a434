using System.Collections;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using Microsoft.Extensions.Options;

namespace YarpGateway.Configuration;

/// <summary>
/// No time in a <c>Gateway:*</c> section longer than <see cref="TimeSpans.Max"/>, the longest that .NET's timers, delays and
/// timeouts take: every time the gateway reads ends up in one of them. Before, each validator checked only that a time
/// was positive, and a longer one stopped the gateway at start with an unhandled exception and exit 134 (tried:
/// <c>Gateway:Telemetry:SaturationLogInterval</c>, <c>SchedulerProbeInterval</c>, <c>Gateway:Resilience:ConnectTimeout</c>
/// of 60 days). One check for every section, walking its times (nested objects, maps and lists included), so that a
/// time added later is covered too.
/// </summary>
internal sealed class TimeSpanRangeValidator<TOptions>(string section) : IValidateOptions<TOptions>
    where TOptions : class
{
    /// <summary>int.MaxValue milliseconds, to the second: 24.20:31:23.</summary>
    public static readonly TimeSpan Max = TimeSpan.FromSeconds(int.MaxValue / 1000);

    public ValidateOptionsResult Validate(string? name, TOptions options)
    {
        var errors = new List<string>();
        Walk(options, section, errors, depth: 0);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    [UnconditionalSuppressMessage("Trimming", "IL2075", Justification = KeptForReflection.Justification)]
    private static void Walk(object? value, string key, List<string> errors, int depth)
    {
        switch (value)
        {
            case null or string:
                return;
            case TimeSpan time:
                if (time > Max)
                {
                    errors.Add($"{key} must be at most {Max} (about 24 days, the longest .NET's timers wait); got {time}.");
                }

                return;
            case IDictionary map:
                foreach (DictionaryEntry entry in map)
                {
                    Walk(entry.Value, $"{key}:{entry.Key}", errors, depth + 1);
                }

                return;
            case IEnumerable list:
                var i = 0;
                foreach (var item in list)
                {
                    Walk(item, $"{key}:{i++}", errors, depth + 1);
                }

                return;
        }

        var type = value.GetType();
        if (depth > 8 || type.IsPrimitive || type.IsEnum || type.Namespace?.StartsWith(nameof(YarpGateway), StringComparison.Ordinal) != true)
        {
            return; // only the gateway's own options classes hold times to walk
        }

        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetIndexParameters().Length == 0 && property.CanRead)
            {
                Walk(property.GetValue(value), $"{key}:{property.Name}", errors, depth + 1);
            }
        }
    }
}
