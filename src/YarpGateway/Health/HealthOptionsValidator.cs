using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.Health;

/// <summary>Both liveness limits must be positive.</summary>
internal sealed class HealthOptionsValidator : IValidateOptions<HealthOptions>
{
    public ValidateOptionsResult Validate(string? name, HealthOptions options)
    {
        var errors = new List<string>();
        OptionChecks.Positive(errors, HealthOptions.SectionName + ":LiveRefusingConnectionsFor", options.LiveRefusingConnectionsFor);
        OptionChecks.Positive(errors, HealthOptions.SectionName + ":LiveMaxSchedulerDelay", options.LiveMaxSchedulerDelay);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
