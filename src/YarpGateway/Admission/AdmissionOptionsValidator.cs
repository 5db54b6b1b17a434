using Microsoft.Extensions.Options;

namespace YarpGateway.Admission;

/// <summary>Lists every bad value under <c>Gateway:Admission</c> at once, with its key.</summary>
internal sealed class AdmissionOptionsValidator : IValidateOptions<AdmissionOptions>
{
    private const string Prefix = AdmissionOptions.SectionName + ":";

    public ValidateOptionsResult Validate(string? name, AdmissionOptions options)
    {
        var errors = new List<string>();
        ConcurrencyLimitSettings.Validate(options.Global.MaxConcurrency, options.Global.MaxQueue, options.Global.QueueTimeout, Prefix + "Global:", errors);
        Positive(options.RetryAfter, "RetryAfter", errors);

        var connections = options.Connections;
        NotNegative(connections.RatePerSecond, "Connections:RatePerSecond", errors);
        if (connections.RatePerSecond > 0)
        {
            AtLeastOne(connections.Burst, "Connections:Burst", errors);
        }

        NotNegative(connections.MaxFirstRequestConnections, "Connections:MaxFirstRequestConnections", errors);
        Positive(connections.MaxWait, "Connections:MaxWait", errors);
        NotNegative(connections.MaxWaiting, "Connections:MaxWaiting", errors);

        var upgrades = options.Upgrades;
        NotNegative(upgrades.RatePerSecond, "Upgrades:RatePerSecond", errors);
        if (upgrades.RatePerSecond > 0)
        {
            AtLeastOne(upgrades.Burst, "Upgrades:Burst", errors);
        }

        Positive(upgrades.RetryAfterMin, "Upgrades:RetryAfterMin", errors);
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

    private static void NotNegative(int value, string key, List<string> errors)
    {
        if (value < 0)
        {
            errors.Add($"{Prefix}{key} must not be negative; got {value}.");
        }
    }

    private static void AtLeastOne(int value, string key, List<string> errors)
    {
        if (value < 1)
        {
            errors.Add($"{Prefix}{key} must be at least 1 when the rate is on; got {value}.");
        }
    }

    private static void Positive(TimeSpan value, string key, List<string> errors)
    {
        if (value <= TimeSpan.Zero)
        {
            errors.Add($"{Prefix}{key} must be positive; got {value}.");
        }
    }
}
