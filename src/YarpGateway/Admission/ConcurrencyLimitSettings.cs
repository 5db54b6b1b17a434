using System.Globalization;
using YarpGateway.Configuration;

namespace YarpGateway.Admission;

/// <summary>
/// One concurrency limit's settings, from <c>Gateway:Admission:Global</c> or from a route's or
/// cluster's <c>Metadata</c>: <c>"MaxConcurrency": "200"</c>, <c>"MaxQueue": "1000"</c>,
/// <c>"QueueTimeout": "00:00:05"</c>. A route or cluster without <c>MaxConcurrency</c> has no limit.
/// <c>"MaxConcurrency": "auto"</c> makes the limit follow the backend's latency
/// (<see cref="GradientConcurrencyController"/>) between <c>AutoMinConcurrency</c> (default 4) and
/// <c>AutoMaxConcurrency</c> (default 1000), starting from 50 (or the nearer bound); then
/// <see cref="MaxConcurrency"/> is that starting limit, and <c>MaxQueue</c> defaults to the upper bound.
/// </summary>
internal sealed record ConcurrencyLimitSettings(int MaxConcurrency, int MaxQueue, TimeSpan QueueTimeout)
{
    public const string MaxConcurrencyKey = "MaxConcurrency";
    public const string MaxQueueKey = "MaxQueue";
    public const string QueueTimeoutKey = "QueueTimeout";
    public const string AutoValue = "auto";
    public const string AutoMinKey = "AutoMinConcurrency";
    public const string AutoMaxKey = "AutoMaxConcurrency";
    public const int DefaultAutoMin = 4;
    public const int DefaultAutoMax = 1000;
    public const int AutoInitial = 50;

    /// <summary>Whether the limit adapts to the backend's latency.</summary>
    public bool Auto { get; init; }

    /// <summary>The adaptive limit's lower bound.</summary>
    public int AutoMin { get; init; } = DefaultAutoMin;

    /// <summary>The adaptive limit's upper bound.</summary>
    public int AutoMax { get; init; } = DefaultAutoMax;

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
        var hasAutoMin = metadata.TryGetValue(AutoMinKey, out var autoMinText);
        var hasAutoMax = metadata.TryGetValue(AutoMaxKey, out var autoMaxText);
        if (!hasLimit)
        {
            if ((hasQueue || hasTimeout || hasAutoMin || hasAutoMax) && errors is not null)
            {
                errors.Add(new ConfigError(metadataKey, $"{MaxQueueKey}/{QueueTimeoutKey}/{AutoMinKey}/{AutoMaxKey} need {MaxConcurrencyKey} next to them."));
            }

            return null;
        }

        var valid = true;
        var auto = string.Equals(concurrencyText, AutoValue, StringComparison.OrdinalIgnoreCase);
        var autoMin = DefaultAutoMin;
        var autoMax = DefaultAutoMax;
        int concurrency;
        if (auto)
        {
            autoMin = hasAutoMin ? ParseInt(autoMinText, metadataKey + ":" + AutoMinKey, minimum: 1, errors, ref valid) : DefaultAutoMin;
            autoMax = hasAutoMax ? ParseInt(autoMaxText, metadataKey + ":" + AutoMaxKey, minimum: 1, errors, ref valid) : DefaultAutoMax;
            if (valid && autoMax < autoMin)
            {
                errors?.Add(new ConfigError(metadataKey + ":" + AutoMaxKey, string.Create(CultureInfo.InvariantCulture, $"{autoMax} is less than {AutoMinKey} ({autoMin}).")));
                valid = false;
            }

            concurrency = Math.Clamp(AutoInitial, autoMin, Math.Max(autoMin, autoMax));
        }
        else
        {
            if (hasAutoMin || hasAutoMax)
            {
                errors?.Add(new ConfigError(metadataKey, $"{AutoMinKey}/{AutoMaxKey} apply only with \"{MaxConcurrencyKey}\": \"{AutoValue}\"."));
                valid = false;
            }

            concurrency = ParseInt(concurrencyText, metadataKey + ":" + MaxConcurrencyKey, minimum: 1, errors, ref valid, orAuto: true);
        }

        // An adaptive limit queues by default: its baseline measurement holds it at the minimum for a moment every 30 s.
        var queue = hasQueue ? ParseInt(queueText, metadataKey + ":" + MaxQueueKey, minimum: 0, errors, ref valid) : auto ? autoMax : DefaultMaxQueue;
        var timeout = DefaultQueueTimeout;
        if (hasTimeout)
        {
            if (!TimeSpans.TryParse(timeoutText, out timeout))
            {
                errors?.Add(new ConfigError(metadataKey + ":" + QueueTimeoutKey, TimeSpans.Refusal(timeoutText, TimeSpans.Positive("00:00:05 for 5 seconds"))));
                valid = false;
            }
        }

        return valid ? new ConcurrencyLimitSettings(concurrency, queue, timeout) { Auto = auto, AutoMin = autoMin, AutoMax = autoMax } : null;
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

    private static int ParseInt(string? text, string key, int minimum, ICollection<ConfigError>? errors, ref bool valid, bool orAuto = false)
    {
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= minimum)
        {
            return value;
        }

        var expected = orAuto ? $"a whole number of at least {minimum}, or \"{AutoValue}\"" : $"a whole number of at least {minimum}";
        errors?.Add(new ConfigError(key, string.Create(CultureInfo.InvariantCulture, $"'{text}' is not {expected}.")));
        valid = false;
        return 0;
    }
}
