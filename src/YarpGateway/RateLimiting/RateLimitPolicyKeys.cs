namespace YarpGateway.RateLimiting;

/// <summary>
/// What of <c>Gateway:RateLimiting</c> is read at start-up. The policies' limits reload (Kind, PermitLimit, the windows,
/// the bucket, QueueLimit, MaxPartitions); which policies exist and how each is partitioned are read at start-up:
/// ASP.NET Core's rate-limiting middleware takes its policies' names once, and a route's claim partition is checked
/// against its authorization when the route is.
/// </summary>
internal static class RateLimitPolicyKeys
{
    /// <summary>How <see cref="Configuration.StartupOnlySections"/> names the part read at start-up.</summary>
    public const string ReadAtStartPart = GatewayRateLimitingOptions.SectionName + " (which policies exist, and their PartitionBy)";

    /// <summary>Every policy's PartitionBy (its default when unset), keyed as in the section: a policy added or removed is a key added or removed.</summary>
    public static IReadOnlyDictionary<string, string> ReadAtStart(IConfiguration configuration)
    {
        var keys = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var section = configuration.GetSection(GatewayRateLimitingOptions.SectionName);
        foreach (var name in Configuration.PolicyKeys.Names(section))
        {
            keys[Configuration.PolicyKeys.Policies + name + ":" + nameof(RateLimitPolicySettings.PartitionBy)] = section[$"Policies:{name}:{nameof(RateLimitPolicySettings.PartitionBy)}"] ?? new RateLimitPolicySettings().PartitionBy;
        }

        return keys;
    }
}
