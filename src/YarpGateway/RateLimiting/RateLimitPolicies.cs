using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.RateLimiting;

/// <summary>The configured policies, built once at start-up from <c>Gateway:RateLimiting:Policies</c>.</summary>
internal sealed class RateLimitPolicies(IOptions<GatewayRateLimitingOptions> options, RateLimitRejections rejections)
{
    private readonly Dictionary<string, PartitionedPolicy> _policies = options.ValueOrNew().Policies
        .Where(p => p.Value is not null && PartitionKind.TryParse(p.Value.PartitionBy, out _))
        .ToDictionary(p => p.Key, p => new PartitionedPolicy(p.Key, p.Value, rejections.Overflowing), StringComparer.OrdinalIgnoreCase);

    public IReadOnlyDictionary<string, PartitionedPolicy> All => _policies;

    public bool Enabled => _policies.Count > 0;
}
