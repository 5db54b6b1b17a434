using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.Resilience;

/// <summary>Lists every bad value under <c>Gateway:Resilience</c> at once.</summary>
internal sealed class ResilienceOptionsValidator : IValidateOptions<ResilienceOptions>
{
    private const string Prefix = ResilienceOptions.SectionName + ":";

    public ValidateOptionsResult Validate(string? name, ResilienceOptions options)
    {
        var errors = new List<string>();
        if (options.MaxRetries is < 0 or > 10)
        {
            errors.Add($"{Prefix}MaxRetries must be from 0 to 10; got {options.MaxRetries}.");
        }

        foreach (var code in options.EffectiveRetryStatusCodes)
        {
            if (!ResilienceSettings.IsRetryableStatus(code))
            {
                errors.Add($"{Prefix}RetryStatusCodes: {code} is not a status a gateway can retry; use 5xx codes such as 502, 503, 504.");
            }
        }

        OptionChecks.Positive(errors, Prefix + "RetryBaseDelay", options.RetryBaseDelay);
        if (options.RetryMaxDelay < options.RetryBaseDelay)
        {
            errors.Add($"{Prefix}RetryMaxDelay ({options.RetryMaxDelay}) must not be less than RetryBaseDelay ({options.RetryBaseDelay}).");
        }

        OptionChecks.NotNegative(errors, Prefix + "MaxRetryBodyBytes", options.MaxRetryBodyBytes);

        if (options.TryTimeout is { } tryTimeout)
        {
            OptionChecks.Positive(errors, Prefix + "TryTimeout", tryTimeout);
        }

        OptionChecks.Positive(errors, Prefix + "ConnectTimeout", options.ConnectTimeout);
        OptionChecks.Positive(errors, Prefix + "PooledConnectionLifetime", options.PooledConnectionLifetime);
        OptionChecks.NotNegative(errors, Prefix + "ExpectContinueAbove", options.ExpectContinueAbove);
        var budget = options.RetryBudget;
        if (budget.Ratio is < 0 or > 1 || double.IsNaN(budget.Ratio))
        {
            errors.Add($"{Prefix}RetryBudget:Ratio must be from 0 to 1 (a share of requests, 0.2 = 20 %); got {budget.Ratio}.");
        }

        OptionChecks.NotNegative(errors, Prefix + "RetryBudget:MinRetriesPerSecond", budget.MinRetriesPerSecond);

        if (budget.Window < TimeSpan.FromSeconds(1) || budget.Window > TimeSpan.FromMinutes(10))
        {
            errors.Add($"{Prefix}RetryBudget:Window must be from 1 s to 10 min; got {budget.Window}.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
