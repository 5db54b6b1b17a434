using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.RateLimiting;

/// <summary>
/// The configured policies, built at start-up from <c>Gateway:RateLimiting:Policies</c>. A reload's limits apply to each
/// of them; which exist and their partitioning are read at start-up (<see cref="RateLimitPolicyKeys"/>).
/// </summary>
internal sealed class RateLimitPolicies : IDisposable
{
    private readonly Dictionary<string, PartitionedPolicy> _policies;
    private readonly ReloadableOptions<GatewayRateLimitingOptions> _reloadable;

    public RateLimitPolicies(IOptions<GatewayRateLimitingOptions> options, ReloadableOptions<GatewayRateLimitingOptions> reloadable, RateLimitRejections rejections)
    {
        _policies = options.ValueOrNew().Policies
            .Where(p => p.Value is not null && PartitionKind.TryParse(p.Value.PartitionBy, out _))
            .ToDictionary(p => p.Key, p => new PartitionedPolicy(p.Key, p.Value, rejections.Overflowing), StringComparer.OrdinalIgnoreCase);
        _reloadable = reloadable;
        _reloadable.Changed += Apply;
    }

    public IReadOnlyDictionary<string, PartitionedPolicy> All => _policies;

    public bool Enabled => _policies.Count > 0;

    private void Apply(GatewayRateLimitingOptions options)
    {
        foreach (var policy in _policies.Values)
        {
            if (options.Policies.TryGetValue(policy.Name, out var settings) && settings is not null)
            {
                policy.Apply(settings);
            }
        }
    }

    public void Dispose() => _reloadable.Changed -= Apply;
}
