using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.Health;

/// <summary>Both shutdown times must be zero or more; the delay may be zero (no drain delay), the timeout must be positive.</summary>
internal sealed class ShutdownOptionsValidator : IValidateOptions<ShutdownOptions>
{
    public ValidateOptionsResult Validate(string? name, ShutdownOptions options)
    {
        var errors = new List<string>();
        OptionChecks.NotNegative(errors, ShutdownOptions.SectionName + ":DrainDelay", options.DrainDelay);
        OptionChecks.Positive(errors, ShutdownOptions.SectionName + ":Timeout", options.Timeout);

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
