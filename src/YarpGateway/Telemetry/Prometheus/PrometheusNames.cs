using System.Text;

namespace YarpGateway.Telemetry.Prometheus;

/// <summary>
/// OpenTelemetry-to-Prometheus naming: invalid characters become '_', the unit becomes a suffix
/// (s → seconds, By → bytes, 1 → ratio, annotations like {request} are dropped), counters end in
/// <c>_total</c>. <c>gateway.scheduler.delay</c> in seconds becomes <c>gateway_scheduler_delay_seconds</c>.
/// </summary>
internal static class PrometheusNames
{
    public static string Metric(string name, string? unit, bool isCounter)
    {
        var builder = new StringBuilder(name.Length + 16);
        Sanitize(name, builder, isLabel: false);
        var suffix = UnitSuffix(unit);
        if (suffix.Length > 0 && !EndsWithSegment(builder, suffix))
        {
            builder.Append('_').Append(suffix);
        }

        if (isCounter && !EndsWithSegment(builder, "total"))
        {
            builder.Append("_total");
        }

        return builder.ToString();
    }

    public static string Label(string name)
    {
        var builder = new StringBuilder(name.Length);
        Sanitize(name, builder, isLabel: true);
        return builder.ToString();
    }

    /// <summary>Label values: backslash, double quote and newline are escaped.</summary>
    public static void AppendLabelValue(StringBuilder builder, string value)
    {
        foreach (var c in value)
        {
            _ = c switch
            {
                '\\' => builder.Append(@"\\"),
                '"' => builder.Append("\\\""),
                '\n' => builder.Append(@"\n"),
                _ => builder.Append(c),
            };
        }
    }

    /// <summary>HELP text: backslash and newline are escaped.</summary>
    public static void AppendHelp(StringBuilder builder, string text)
    {
        foreach (var c in text)
        {
            _ = c switch
            {
                '\\' => builder.Append(@"\\"),
                '\n' => builder.Append(@"\n"),
                _ => builder.Append(c),
            };
        }
    }

    internal static string UnitSuffix(string? unit)
    {
        if (string.IsNullOrEmpty(unit))
        {
            return string.Empty;
        }

        // Annotations in braces carry no unit: "{request}", "{connection}".
        if (unit.StartsWith('{') && unit.EndsWith('}'))
        {
            return string.Empty;
        }

        return unit switch
        {
            "s" => "seconds",
            "ms" => "milliseconds",
            "us" => "microseconds",
            "ns" => "nanoseconds",
            "By" => "bytes",
            "KiBy" => "kibibytes",
            "MiBy" => "mebibytes",
            "1" => "ratio",
            "%" => "percent",
            _ => Label(unit.Replace("/", "_per_", StringComparison.Ordinal)),
        };
    }

    private static void Sanitize(string name, StringBuilder builder, bool isLabel)
    {
        var lastWasUnderscore = false;
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            var valid = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or '_' || (c is >= '0' and <= '9' && i > 0) || (!isLabel && c == ':');
            if (!valid || c == '_')
            {
                if (!lastWasUnderscore && builder.Length > 0)
                {
                    builder.Append('_');
                }
                else if (builder.Length == 0 && c is >= '0' and <= '9')
                {
                    builder.Append('_').Append(c);
                    continue;
                }

                lastWasUnderscore = true;
                continue;
            }

            builder.Append(c);
            lastWasUnderscore = false;
        }
    }

    private static bool EndsWithSegment(StringBuilder builder, string segment)
        => builder.Length > segment.Length && builder[builder.Length - segment.Length - 1] == '_'
            && builder.ToString(builder.Length - segment.Length, segment.Length) == segment;
}
