using Microsoft.Extensions.Options;

namespace YarpGateway.Health;

/// <summary>Both shutdown times must be zero or more; the delay may be zero (no drain delay), the timeout must be positive.</summary>
internal sealed class ShutdownOptionsValidator : IValidateOptions<ShutdownOptions>
{
    public ValidateOptionsResult Validate(string? name, ShutdownOptions options)
    {
        var errors = new List<string>();
        if (options.DrainDelay < TimeSpan.Zero)
        {
            errors.Add($"{ShutdownOptions.SectionName}:DrainDelay must not be negative; got {options.DrainDelay}.");
        }

        if (options.Timeout <= TimeSpan.Zero)
        {
            errors.Add($"{ShutdownOptions.SectionName}:Timeout must be positive; got {options.Timeout}.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
