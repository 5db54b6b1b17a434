using System.Globalization;
using System.Text;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace YarpGateway.Telemetry.Prometheus;

/// <summary>
/// Writes OpenTelemetry metrics in the Prometheus text exposition format 0.0.4: <c># HELP</c> and
/// <c># TYPE</c> per family, counters with <c>_total</c>, histograms as cumulative
/// <c>_bucket{le=...}</c>, <c>_sum</c> and <c>_count</c>, and a <c>target_info</c> line with the
/// resource's attributes. Metrics that share a Prometheus name are written as one family.
/// </summary>
internal static class PrometheusTextWriter
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    public static void WriteTargetInfo(StringBuilder output, Resource resource)
    {
        output.Append("# HELP target_info Target metadata\n# TYPE target_info gauge\ntarget_info");
        WriteLabels(output, resource.Attributes.Select(a => new KeyValuePair<string, object?>(a.Key, a.Value)), extraName: null, extraValue: null);
        output.Append(" 1\n");
    }

    public static void Write(StringBuilder output, IEnumerable<Metric> metrics)
    {
        foreach (var family in metrics.GroupBy(FamilyName, StringComparer.Ordinal))
        {
            // An instrument that recorded nothing yet has no samples: no family either.
            if (!family.Any(HasPoints))
            {
                continue;
            }

            var first = family.First();
            output.Append("# HELP ").Append(family.Key).Append(' ');
            PrometheusNames.AppendHelp(output, string.IsNullOrEmpty(first.Description) ? first.Name : first.Description);
            output.Append("\n# TYPE ").Append(family.Key).Append(' ').Append(TypeOf(first.MetricType)).Append('\n');
            foreach (var metric in family)
            {
                WritePoints(output, family.Key, metric);
            }
        }
    }

    private static void WritePoints(StringBuilder output, string name, Metric metric)
    {
        foreach (ref readonly var point in metric.GetMetricPoints())
        {
            var tags = Tags(point.Tags);
            switch (metric.MetricType)
            {
                case MetricType.LongSum or MetricType.LongSumNonMonotonic:
                    Sample(output, name, tags, point.GetSumLong());
                    break;
                case MetricType.DoubleSum or MetricType.DoubleSumNonMonotonic:
                    Sample(output, name, tags, point.GetSumDouble());
                    break;
                case MetricType.LongGauge:
                    Sample(output, name, tags, point.GetGaugeLastValueLong());
                    break;
                case MetricType.DoubleGauge:
                    Sample(output, name, tags, point.GetGaugeLastValueDouble());
                    break;
                case MetricType.Histogram:
                    long cumulative = 0;
                    foreach (var bucket in point.GetHistogramBuckets())
                    {
                        cumulative += bucket.BucketCount;
                        output.Append(name).Append("_bucket");
                        WriteLabels(output, tags, "le", double.IsPositiveInfinity(bucket.ExplicitBound) ? "+Inf" : Format(bucket.ExplicitBound));
                        output.Append(' ').Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
                    }

                    Sample(output, name + "_sum", tags, point.GetHistogramSum());
                    Sample(output, name + "_count", tags, point.GetHistogramCount());
                    break;
                default:
                    // Exponential histograms are not configured anywhere in the gateway.
                    break;
            }
        }
    }

    private static void Sample(StringBuilder output, string name, List<KeyValuePair<string, object?>> tags, double value)
    {
        output.Append(name);
        WriteLabels(output, tags, null, null);
        output.Append(' ').Append(Format(value)).Append('\n');
    }

    private static void WriteLabels(StringBuilder output, IEnumerable<KeyValuePair<string, object?>> tags, string? extraName, string? extraValue)
    {
        var any = false;
        foreach (var (key, value) in tags)
        {
            output.Append(any ? ',' : '{').Append(PrometheusNames.Label(key)).Append("=\"");
            PrometheusNames.AppendLabelValue(output, Convert.ToString(value, CultureInfo.InvariantCulture) ?? string.Empty);
            output.Append('"');
            any = true;
        }

        if (extraName is not null)
        {
            output.Append(any ? ',' : '{').Append(extraName).Append("=\"").Append(extraValue).Append('"');
            any = true;
        }

        if (any)
        {
            output.Append('}');
        }
    }

    private static List<KeyValuePair<string, object?>> Tags(ReadOnlyTagCollection tags)
    {
        var list = new List<KeyValuePair<string, object?>>(tags.Count);
        foreach (var tag in tags)
        {
            list.Add(tag);
        }

        return list;
    }

    private static string Format(double value) => value switch
    {
        double.PositiveInfinity => "+Inf",
        double.NegativeInfinity => "-Inf",
        double.NaN => "NaN",
        _ => value.ToString("R", CultureInfo.InvariantCulture),
    };

    // _count, _sum and _bucket belong to histograms in Prometheus; a gauge such as the runtime's
    // dotnet.assembly.count would read as part of one (promtool rejects it), so it gets "_value".
    private static string FamilyName(Metric metric)
    {
        var name = PrometheusNames.Metric(metric.Name, metric.Unit, IsCounter(metric.MetricType));
        return metric.MetricType != MetricType.Histogram && (name.EndsWith("_count", StringComparison.Ordinal) || name.EndsWith("_sum", StringComparison.Ordinal) || name.EndsWith("_bucket", StringComparison.Ordinal))
            ? name + "_value"
            : name;
    }

    private static bool HasPoints(Metric metric)
    {
        foreach (ref readonly var point in metric.GetMetricPoints())
        {
            return true;
        }

        return false;
    }

    private static bool IsCounter(MetricType type) => type is MetricType.LongSum or MetricType.DoubleSum;

    private static string TypeOf(MetricType type) => type switch
    {
        MetricType.LongSum or MetricType.DoubleSum => "counter",
        MetricType.Histogram => "histogram",
        _ => "gauge", // gauges and up-down counters
    };
}
