using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.Memory;

/// <summary>Start-up and reload checks for <see cref="MemoryOptions"/>, every error listed.</summary>
internal sealed class MemoryOptionsValidator : IValidateOptions<MemoryOptions>
{
    public ValidateOptionsResult Validate(string? name, MemoryOptions options)
    {
        var errors = new List<string>();
        if (options.MinConnectionDrop < 1)
        {
            errors.Add($"{MemoryOptions.SectionName}:MinConnectionDrop must be at least 1; got {options.MinConnectionDrop}.");
        }

        OptionChecks.NotNegative(errors, $"{MemoryOptions.SectionName}:SettleTime", options.SettleTime);
        OptionChecks.NotNegative(errors, $"{MemoryOptions.SectionName}:MinInterval", options.MinInterval);
        if (options.MaxHeapBytes < MemoryOptions.MinHeapBytesLimit)
        {
            errors.Add($"{MemoryOptions.SectionName}:MaxHeapBytes must be at least {MemoryOptions.MinHeapBytesLimit} (1 MiB); got {options.MaxHeapBytes}.");
        }

        if (!(options.RefuseNewAbove > 0 && options.RefuseNewAbove <= 1))
        {
            errors.Add($"{MemoryOptions.SectionName}:RefuseNewAbove must be above 0 and at most 1 (1 turns it off); got {options.RefuseNewAbove}.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
