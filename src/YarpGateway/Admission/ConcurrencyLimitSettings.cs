using System.Globalization;
using YarpGateway.Configuration;

namespace YarpGateway.Admission;

/// <summary>
/// One concurrency limit's settings, from <c>Gateway:Admission:Global</c> or from a route's or
/// cluster's <c>Metadata</c>: <c>"MaxConcurrency": "200"</c>, <c>"MaxQueue": "1000"</c>,
/// <c>"QueueTimeout": "00:00:05"</c>. A route or cluster without <c>MaxConcurrency</c> has no limit.
/// </summary>
internal sealed record ConcurrencyLimitSettings(int MaxConcurrency, int MaxQueue, TimeSpan QueueTimeout)
{
    public const string MaxConcurrencyKey = "MaxConcurrency";
    public const string MaxQueueKey = "MaxQueue";
    public const string QueueTimeoutKey = "QueueTimeout";

    /// <summary>Queue defaults for a metadata limit that names only <c>MaxConcurrency</c>.</summary>
    public const int DefaultMaxQueue = 0;

    public static readonly TimeSpan DefaultQueueTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Reads a limit from metadata; null when there is none or it is invalid (<paramref name="errors"/> says why).</summary>
    public static ConcurrencyLimitSettings? FromMetadata(IReadOnlyDictionary<string, string>? metadata, string metadataKey, ICollection<ConfigError>? errors)
    {
        if (metadata is null)
        {
            return null;
        }

        var hasLimit = metadata.TryGetValue(MaxConcurrencyKey, out var concurrencyText);
        var hasQueue = metadata.TryGetValue(MaxQueueKey, out var queueText);
        var hasTimeout = metadata.TryGetValue(QueueTimeoutKey, out var timeoutText);
        if (!hasLimit)
        {
            if ((hasQueue || hasTimeout) && errors is not null)
            {
                errors.Add(new ConfigError(metadataKey, $"{MaxQueueKey}/{QueueTimeoutKey} need {MaxConcurrencyKey} next to them."));
            }

            return null;
        }

        var valid = true;
        var concurrency = ParseInt(concurrencyText, metadataKey + ":" + MaxConcurrencyKey, minimum: 1, errors, ref valid);
        var queue = hasQueue ? ParseInt(queueText, metadataKey + ":" + MaxQueueKey, minimum: 0, errors, ref valid) : DefaultMaxQueue;
        var timeout = DefaultQueueTimeout;
        if (hasTimeout)
        {
            if (!TimeSpan.TryParse(timeoutText, CultureInfo.InvariantCulture, out timeout) || timeout <= TimeSpan.Zero)
            {
                errors?.Add(new ConfigError(metadataKey + ":" + QueueTimeoutKey, $"'{timeoutText}' is not a positive time span (e.g. 00:00:05 for 5 seconds)."));
                valid = false;
            }
        }

        return valid ? new ConcurrencyLimitSettings(concurrency, queue, timeout) : null;
    }

    /// <summary>Checks global limit options; 0 concurrency means off and skips the rest.</summary>
    public static void Validate(int maxConcurrency, int maxQueue, TimeSpan queueTimeout, string prefix, List<string> errors)
    {
        if (maxConcurrency < 0)
        {
            errors.Add($"{prefix}{MaxConcurrencyKey} must not be negative (0 turns the limit off); got {maxConcurrency}.");
        }

        if (maxQueue < 0)
        {
            errors.Add($"{prefix}{MaxQueueKey} must not be negative; got {maxQueue}.");
        }

        if (queueTimeout <= TimeSpan.Zero)
        {
            errors.Add($"{prefix}{QueueTimeoutKey} must be positive; got {queueTimeout}.");
        }
    }

    private static int ParseInt(string? text, string key, int minimum, ICollection<ConfigError>? errors, ref bool valid)
    {
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= minimum)
        {
            return value;
        }

        errors?.Add(new ConfigError(key, string.Create(CultureInfo.InvariantCulture, $"'{text}' is not a whole number of at least {minimum}.")));
        valid = false;
        return 0;
    }
}
