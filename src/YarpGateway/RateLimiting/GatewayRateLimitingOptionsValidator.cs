using YarpGateway.Configuration;
using Microsoft.Extensions.Options;

namespace YarpGateway.RateLimiting;

/// <summary>Lists every bad policy under <c>Gateway:RateLimiting</c> at once.</summary>
internal sealed class GatewayRateLimitingOptionsValidator : IValidateOptions<GatewayRateLimitingOptions>
{
    private const string Prefix = GatewayRateLimitingOptions.SectionName + ":Policies:";

    public ValidateOptionsResult Validate(string? name, GatewayRateLimitingOptions options)
    {
        var errors = new List<string>();
        foreach (var (policy, settings) in options.Policies)
        {
            var key = Prefix + policy;
            if (RoutePolicyNames.Is(policy, RoutePolicyNames.Default) || RoutePolicyNames.Is(policy, RoutePolicyNames.Disable))
            {
                errors.Add($"{key}: '{policy}' is reserved by YARP's route field; give the policy another name.");
            }

            if (settings is null)
            {
                errors.Add($"{key} is empty; set at least PermitLimit.");
                continue;
            }

            if (!Enum.IsDefined(settings.Kind))
            {
                errors.Add($"{key}:Kind must be TokenBucket, FixedWindow, SlidingWindow or Concurrency.");
            }

            if (settings.PermitLimit < 1)
            {
                errors.Add($"{key}:PermitLimit must be at least 1; got {settings.PermitLimit}.");
            }

            if (settings.QueueLimit < 0)
            {
                errors.Add($"{key}:QueueLimit must not be negative; got {settings.QueueLimit}.");
            }

            if (settings.MaxPartitions < 1)
            {
                errors.Add($"{key}:MaxPartitions must be at least 1; got {settings.MaxPartitions}.");
            }

            // A header name no request can carry would put every request in the one partition of those without it.
            if (!PartitionKind.TryParse(settings.PartitionBy, out _, out var reason))
            {
                errors.Add($"{key}:PartitionBy '{settings.PartitionBy}' {reason}.");
            }

            switch (settings.Kind)
            {
                case RateLimitKind.FixedWindow or RateLimitKind.SlidingWindow when settings.Window <= TimeSpan.Zero:
                    errors.Add($"{key}:Window must be positive; got {settings.Window}.");
                    break;
                case RateLimitKind.SlidingWindow when settings.SegmentsPerWindow < 1:
                    errors.Add($"{key}:SegmentsPerWindow must be at least 1; got {settings.SegmentsPerWindow}.");
                    break;
                case RateLimitKind.TokenBucket:
                    if (settings.ReplenishmentPeriod <= TimeSpan.Zero)
                    {
                        errors.Add($"{key}:ReplenishmentPeriod must be positive; got {settings.ReplenishmentPeriod}.");
                    }

                    if (settings.TokensPerPeriod is < 1)
                    {
                        errors.Add($"{key}:TokensPerPeriod must be at least 1; got {settings.TokensPerPeriod}.");
                    }

                    break;
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
