using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Options;

namespace YarpGateway.Configuration;

internal static class OptionsExtensions
{
    /// <summary>
    /// The options' value, or a new default one when they do not validate: for code that runs
    /// before start-up's check has listed the errors (which then stops the gateway).
    /// </summary>
    public static TOptions ValueOrNew<TOptions>(this IOptions<TOptions> options)
        where TOptions : class, new()
    {
        try
        {
            return options.Value;
        }
        catch (Exception ex) when (ex is OptionsValidationException or InvalidOperationException)
        {
            return new TOptions();
        }
    }

    /// <summary>
    /// For config rules that check names against a section: the options' value; when they do not
    /// validate, the section bound without validation (its own errors are listed apart, and a route
    /// naming a policy that exists should not get a second, misleading error); else a new default.
    /// </summary>
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = KeptForReflection.Justification)]
    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = KeptForReflection.Justification)]
    public static TOptions ValueOrUnvalidated<TOptions>(this IOptions<TOptions> options, IConfiguration configuration, string section)
        where TOptions : class, new()
    {
        try
        {
            return options.Value;
        }
        catch (Exception ex) when (ex is OptionsValidationException or InvalidOperationException)
        {
            try
            {
                return configuration.GetSection(section).Get<TOptions>() ?? new TOptions();
            }
            catch (InvalidOperationException)
            {
                return new TOptions();
            }
        }
    }
}
