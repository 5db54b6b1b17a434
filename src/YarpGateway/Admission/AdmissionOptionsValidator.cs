using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.Admission;

/// <summary>Lists every bad value under <c>Gateway:Admission</c> at once, with its key.</summary>
internal sealed class AdmissionOptionsValidator : IValidateOptions<AdmissionOptions>
{
    private const string Prefix = AdmissionOptions.SectionName + ":";

    public ValidateOptionsResult Validate(string? name, AdmissionOptions options)
    {
        var errors = new List<string>();
        ConcurrencyLimitSettings.Validate(options.Global.MaxConcurrency, options.Global.MaxQueue, options.Global.QueueTimeout, Prefix + "Global:", errors);
        OptionChecks.Positive(errors, Prefix + "RetryAfter", options.RetryAfter);
        if (!(options.ClusterShare > 0 && options.ClusterShare <= 1))
        {
            errors.Add($"{Prefix}ClusterShare must be more than 0 and at most 1 (1 turns it off); got {options.ClusterShare}.");
        }

        if (!(options.UploadShare > 0 && options.UploadShare <= 1))
        {
            errors.Add($"{Prefix}UploadShare must be more than 0 and at most 1 (1 turns it off); got {options.UploadShare}.");
        }

        var connections = options.Connections;
        RateAndBurst(connections.RatePerSecond, connections.Burst, "Connections:", errors);
        OptionChecks.NotNegative(errors, Prefix + "Connections:MaxFirstRequestConnections", connections.MaxFirstRequestConnections);
        OptionChecks.NotNegative(errors, Prefix + "Connections:AcceptWindow", connections.AcceptWindow);
        OptionChecks.Positive(errors, Prefix + "Connections:MaxFirstRequestTime", connections.MaxFirstRequestTime);
        OptionChecks.Positive(errors, Prefix + "Connections:MaxWait", connections.MaxWait);
        OptionChecks.NotNegative(errors, Prefix + "Connections:MaxWaiting", connections.MaxWaiting);
        OptionChecks.NotNegative(errors, Prefix + "Connections:MaxPerClientAddress", connections.MaxPerClientAddress);
        if (connections.MaxOpen is < 1)
        {
            errors.Add($"{Prefix}Connections:MaxOpen must be at least 1, or left out for what the open-file limit allows; got {connections.MaxOpen}.");
        }

        var adaptive = connections.Adaptive;
        if (adaptive.Enabled)
        {
            const string Key = Prefix + "Connections:Adaptive:";
            if (adaptive.TargetDelay <= TimeSpan.Zero || adaptive.TargetDelay > TimeSpan.FromSeconds(10))
            {
                errors.Add($"{Key}TargetDelay must be more than 0 and at most 10 s; got {adaptive.TargetDelay}.");
            }

            if (adaptive.EstablishedTargetDelay is { } established && (established <= TimeSpan.Zero || established > adaptive.TargetDelay))
            {
                errors.Add($"{Key}EstablishedTargetDelay must be more than 0 and at most TargetDelay ({adaptive.TargetDelay}), or left out for a quarter of it; got {established}.");
            }

            if (adaptive.EstablishedRequestRate < 0)
            {
                errors.Add($"{Key}EstablishedRequestRate must not be negative (0: the established target always applies); got {adaptive.EstablishedRequestRate}.");
            }

            if (adaptive.MinRate < 1)
            {
                errors.Add($"{Key}MinRate must be at least 1; got {adaptive.MinRate}.");
            }

            if (adaptive.MaxRate < adaptive.MinRate)
            {
                errors.Add($"{Key}MaxRate ({adaptive.MaxRate}) must not be less than MinRate ({adaptive.MinRate}).");
            }

            if (adaptive.InitialRate < adaptive.MinRate || adaptive.InitialRate > adaptive.MaxRate)
            {
                errors.Add($"{Key}InitialRate ({adaptive.InitialRate}) must be from MinRate ({adaptive.MinRate}) to MaxRate ({adaptive.MaxRate}).");
            }

            if (connections.Burst < 1 && connections.RatePerSecond == 0) // else said above
            {
                errors.Add($"{Prefix}Connections:Burst must be at least 1 while the adaptive rate is on; got {connections.Burst}.");
            }
        }

        var upgrades = options.Upgrades;
        RateAndBurst(upgrades.RatePerSecond, upgrades.Burst, "Upgrades:", errors);

        OptionChecks.Positive(errors, Prefix + "Upgrades:RetryAfterMin", upgrades.RetryAfterMin);
        if (upgrades.RetryAfterMax < upgrades.RetryAfterMin)
        {
            errors.Add($"{Prefix}Upgrades:RetryAfterMax ({upgrades.RetryAfterMax}) must not be less than RetryAfterMin ({upgrades.RetryAfterMin}).");
        }

        if (options.MaxConcurrentConnections is < 1)
        {
            errors.Add($"{Prefix}MaxConcurrentConnections must be at least 1, or left out for no limit; got {options.MaxConcurrentConnections}.");
        }

        if (options.MaxConcurrentUpgradedConnections is < 0)
        {
            errors.Add($"{Prefix}MaxConcurrentUpgradedConnections must not be negative, or left out for no limit; got {options.MaxConcurrentUpgradedConnections}.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    // A token bucket: the rate may be 0 (off); when it is on, the bucket must hold at least one token.
    private static void RateAndBurst(int ratePerSecond, int burst, string prefix, List<string> errors)
    {
        OptionChecks.NotNegative(errors, Prefix + prefix + "RatePerSecond", ratePerSecond);
        if (ratePerSecond > 0 && burst < 1)
        {
            errors.Add($"{Prefix}{prefix}Burst must be at least 1 when the rate is on; got {burst}.");
        }
    }
}
