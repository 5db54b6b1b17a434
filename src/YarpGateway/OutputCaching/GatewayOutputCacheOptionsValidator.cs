using Microsoft.Extensions.Options;

namespace YarpGateway.OutputCaching;

/// <summary>Lists every bad value under <c>Gateway:OutputCache</c> at once.</summary>
internal sealed class GatewayOutputCacheOptionsValidator : IValidateOptions<GatewayOutputCacheOptions>
{
    private const string Prefix = GatewayOutputCacheOptions.SectionName + ":";

    public ValidateOptionsResult Validate(string? name, GatewayOutputCacheOptions options)
    {
        var errors = new List<string>();
        if (options.SizeLimit < 1)
        {
            errors.Add($"{Prefix}SizeLimit must be at least 1 byte; got {options.SizeLimit}.");
        }

        if (options.MaximumBodySize < 1 || options.MaximumBodySize > options.SizeLimit)
        {
            errors.Add($"{Prefix}MaximumBodySize must be from 1 byte to SizeLimit ({options.SizeLimit}); got {options.MaximumBodySize}.");
        }

        foreach (var (policy, settings) in options.Policies)
        {
            var key = $"{Prefix}Policies:{policy}";
            if (settings is null)
            {
                continue;
            }

            if (settings.Duration <= TimeSpan.Zero)
            {
                errors.Add($"{key}:Duration must be positive; got {settings.Duration}.");
            }

            if (settings.VaryByQuery.Any(string.IsNullOrWhiteSpace) || settings.VaryByHeader.Any(string.IsNullOrWhiteSpace))
            {
                errors.Add($"{key}: VaryByQuery and VaryByHeader must not have empty entries.");
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
