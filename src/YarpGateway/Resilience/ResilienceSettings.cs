using System.Globalization;
using YarpGateway.Configuration;

namespace YarpGateway.Resilience;

/// <summary>
/// The retry and timeout settings in force for one route and cluster: <see cref="ResilienceOptions"/>
/// overridden by cluster metadata, then by route metadata (<c>MaxRetries</c>, <c>TryTimeout</c>,
/// <c>RetryStatusCodes</c>; <c>RetryIdempotent</c> on routes; <c>ConnectTimeout</c>,
/// <c>PooledConnectionLifetime</c> and <c>ExpectContinueAbove</c> on clusters).
/// </summary>
internal sealed record ResilienceSettings(int MaxRetries, IReadOnlySet<int> RetryStatusCodes, TimeSpan? TryTimeout, bool RetryIdempotent, int MaxRetryBodyBytes)
{
    public const string MaxRetriesKey = "MaxRetries";
    public const string TryTimeoutKey = "TryTimeout";
    public const string RetryStatusCodesKey = "RetryStatusCodes";
    public const string RetryIdempotentKey = "RetryIdempotent";
    public const string ConnectTimeoutKey = "ConnectTimeout";
    public const string PooledConnectionLifetimeKey = "PooledConnectionLifetime";
    public const string ExpectContinueAboveKey = "ExpectContinueAbove";

    public static bool IsRetryableStatus(int code) => code is >= 500 and <= 599;

    public static ResilienceSettings Resolve(ResilienceOptions options, IReadOnlyDictionary<string, string>? cluster, IReadOnlyDictionary<string, string>? route)
    {
        var maxRetries = options.MaxRetries;
        var statuses = (IReadOnlySet<int>)options.EffectiveRetryStatusCodes.ToHashSet();
        var tryTimeout = options.TryTimeout;
        foreach (var metadata in new[] { cluster, route })
        {
            if (metadata is null)
            {
                continue;
            }

            if (metadata.TryGetValue(MaxRetriesKey, out var retries) && TryParseRetries(retries, out var r))
            {
                maxRetries = r;
            }

            if (metadata.TryGetValue(TryTimeoutKey, out var timeout) && TimeSpans.TryParse(timeout, out var t))
            {
                tryTimeout = t;
            }

            if (metadata.TryGetValue(RetryStatusCodesKey, out var codes) && TryParseStatusCodes(codes, out var s))
            {
                statuses = s;
            }
        }

        var idempotent = route is not null && route.TryGetValue(RetryIdempotentKey, out var flag) && bool.TryParse(flag, out var b) && b;
        return new ResilienceSettings(maxRetries, statuses, tryTimeout, idempotent, options.MaxRetryBodyBytes);
    }

    /// <summary>The cluster's connect timeout: metadata <c>ConnectTimeout</c>, else the option.</summary>
    public static TimeSpan ConnectTimeout(ResilienceOptions options, IReadOnlyDictionary<string, string>? cluster)
        => cluster is not null && cluster.TryGetValue(ConnectTimeoutKey, out var text) && TimeSpans.TryParse(text, out var value) ? value : options.ConnectTimeout;

    /// <summary>The cluster's pooled connection lifetime: metadata <c>PooledConnectionLifetime</c>, else the option.</summary>
    public static TimeSpan PooledConnectionLifetime(ResilienceOptions options, IReadOnlyDictionary<string, string>? cluster)
        => cluster is not null && cluster.TryGetValue(PooledConnectionLifetimeKey, out var text) && TimeSpans.TryParse(text, out var value) ? value : options.PooledConnectionLifetime;

    /// <summary>The cluster's <c>Expect: 100-continue</c> threshold in bytes (0: never): metadata <c>ExpectContinueAbove</c>, else the option.</summary>
    public static long ExpectContinueAbove(ResilienceOptions options, IReadOnlyDictionary<string, string>? cluster)
        => cluster is not null && cluster.TryGetValue(ExpectContinueAboveKey, out var text) && TryParseBytes(text, out var value) ? value : options.ExpectContinueAbove;

    /// <summary>Adds an error for each resilience metadata value that does not parse.</summary>
    public static void Validate(IReadOnlyDictionary<string, string>? metadata, string key, bool isRoute, ICollection<ConfigError> errors)
    {
        if (metadata is null)
        {
            return;
        }

        if (metadata.TryGetValue(MaxRetriesKey, out var retries) && !TryParseRetries(retries, out _))
        {
            errors.Add(new ConfigError($"{key}:{MaxRetriesKey}", $"'{retries}' is not a number of retries from 0 to 10."));
        }

        if (metadata.TryGetValue(TryTimeoutKey, out var tryTimeout) && !TimeSpans.TryParse(tryTimeout, out _))
        {
            errors.Add(new ConfigError($"{key}:{TryTimeoutKey}", TimeSpans.Refusal(tryTimeout, TimeSpans.Positive("00:00:01"))));
        }

        if (metadata.TryGetValue(RetryStatusCodesKey, out var codes) && !TryParseStatusCodes(codes, out _))
        {
            errors.Add(new ConfigError($"{key}:{RetryStatusCodesKey}", $"'{codes}' is not a comma-separated list of 5xx status codes (e.g. \"502,503\")."));
        }

        if (isRoute && metadata.TryGetValue(RetryIdempotentKey, out var flag) && !bool.TryParse(flag, out _))
        {
            errors.Add(new ConfigError($"{key}:{RetryIdempotentKey}", $"'{flag}' is not true or false."));
        }

        if (!isRoute && metadata.TryGetValue(ConnectTimeoutKey, out var connect) && !TimeSpans.TryParse(connect, out _))
        {
            errors.Add(new ConfigError($"{key}:{ConnectTimeoutKey}", TimeSpans.Refusal(connect, TimeSpans.Positive("00:00:02"))));
        }

        if (!isRoute && metadata.TryGetValue(PooledConnectionLifetimeKey, out var lifetime) && !TimeSpans.TryParse(lifetime, out _))
        {
            errors.Add(new ConfigError($"{key}:{PooledConnectionLifetimeKey}", TimeSpans.Refusal(lifetime, TimeSpans.Positive("00:02:00"))));
        }

        if (!isRoute && metadata.TryGetValue(ExpectContinueAboveKey, out var above) && !TryParseBytes(above, out _))
        {
            errors.Add(new ConfigError($"{key}:{ExpectContinueAboveKey}", $"'{above}' is not a number of bytes (e.g. 65536; 0 turns it off)."));
        }
    }

    private static bool TryParseBytes(string? text, out long value)
        => long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);

    private static bool TryParseRetries(string? text, out int value)
        => int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value <= 10;

    private static bool TryParseStatusCodes(string? text, out IReadOnlySet<int> value)
    {
        var set = new HashSet<int>();
        value = set;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var code) || !IsRetryableStatus(code))
            {
                return false;
            }

            set.Add(code);
        }

        return set.Count > 0;
    }
}
