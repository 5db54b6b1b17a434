namespace YarpGateway.RateLimiting;

/// <summary>
/// Which keys of <c>Gateway:RateLimiting</c> a reload applies. The policies' limits reload (Kind, PermitLimit, the windows,
/// the bucket, QueueLimit, MaxPartitions); which policies exist and how each is partitioned are read at start-up:
/// ASP.NET Core's rate-limiting middleware takes its policies' names once, and a route's claim partition is checked
/// against its authorization when the route is.
/// </summary>
internal static class RateLimitPolicyKeys
{
    /// <summary>How <see cref="Configuration.StartupOnlySections"/> names the part read at start-up.</summary>
    public const string ReadAtStartPart = GatewayRateLimitingOptions.SectionName + " (which policies exist, and their PartitionBy)";

    private const string Policies = "Policies:";
    private const string PartitionBy = ":" + nameof(RateLimitPolicySettings.PartitionBy);

    /// <summary>Every policy's PartitionBy (its default when unset), keyed as in the section: a policy added or removed is a key added or removed.</summary>
    public static IReadOnlyDictionary<string, string> ReadAtStart(IConfiguration configuration)
    {
        var keys = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var policy in configuration.GetSection(GatewayRateLimitingOptions.SectionName + ":Policies").GetChildren())
        {
            keys[Policies + policy.Key + PartitionBy] = policy[nameof(RateLimitPolicySettings.PartitionBy)] ?? new RateLimitPolicySettings().PartitionBy;
        }

        return keys;
    }

    /// <summary>
    /// The keys a reload applies (<see cref="Configuration.AppliedKeys"/>): those of the policies the gateway started with,
    /// but for PartitionBy. A started policy gone from the section keeps running as it was until a restart, so what was
    /// applied of it stays.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Live(IReadOnlyCollection<string> started, IReadOnlyDictionary<string, string> keys, IReadOnlyDictionary<string, string>? applied)
    {
        var live = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var name in started)
        {
            var prefix = Policies + name + ":";
            var present = false;
            foreach (var (key, value) in keys)
            {
                if (key.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
                {
                    present = true;
                    if (!key.EndsWith(PartitionBy, StringComparison.OrdinalIgnoreCase) || key.Length != prefix.Length + PartitionBy.Length - 1)
                    {
                        live[key] = value;
                    }
                }
            }

            if (!present && applied is not null)
            {
                foreach (var (key, value) in applied)
                {
                    if (key.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
                    {
                        live[key] = value;
                    }
                }
            }
        }

        return live;
    }
}
