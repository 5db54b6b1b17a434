using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Options;

namespace YarpGateway.Configuration;

/// <summary>Registers a <c>Gateway:*</c> options section the way every feature does: bound, validated, reloadable.</summary>
internal static class ReloadableOptionsExtensions
{
    /// <summary>
    /// Binds <typeparamref name="TOptions"/> to <paramref name="section"/>, validates it with
    /// <typeparamref name="TValidator"/> (start-up lists every error) and registers
    /// <see cref="ReloadableOptions{TOptions}"/> for reading it on the request path.
    /// </summary>
    public static IServiceCollection AddReloadableOptions<TOptions, [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TValidator>(this IServiceCollection services, IConfiguration configuration, string section)
        where TOptions : class, new()
        where TValidator : class, IValidateOptions<TOptions>
    {
        services.AddSingleton<IValidateOptions<TOptions>, TValidator>();
        return services.AddReloadableOptions<TOptions>(configuration, section);
    }

    /// <summary>As above, for options whose only checks are that they bind.</summary>
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = KeptForReflection.Justification)]
    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = KeptForReflection.Justification)]
    public static IServiceCollection AddReloadableOptions<TOptions>(this IServiceCollection services, IConfiguration configuration, string section)
        where TOptions : class, new()
    {
        services.AddOptions<TOptions>().Bind(configuration.GetSection(section));
        services.AddSingleton(sp => ActivatorUtilities.CreateInstance<ReloadableOptions<TOptions>>(sp, section));
        return services;
    }

    /// <summary>
    /// For a section of named route policies whose settings reload while which policies exist is read at start-up: bound,
    /// validated (start-up lists every error), and reloadable in the policies the gateway started with, but for
    /// <paramref name="readAtStart"/>, a setting of each that takes a restart (<see cref="PolicyKeys.Live"/>).
    /// </summary>
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = KeptForReflection.Justification)]
    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = KeptForReflection.Justification)]
    public static IServiceCollection AddReloadablePolicyOptions<TOptions, [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TValidator>(this IServiceCollection services, IConfiguration configuration, string section, Func<TOptions, IEnumerable<string>> policyNames, string? readAtStart = null)
        where TOptions : class, new()
        where TValidator : class, IValidateOptions<TOptions>
    {
        services.AddOptions<TOptions>().Bind(configuration.GetSection(section));
        services.AddSingleton<IValidateOptions<TOptions>, TValidator>();
        services.AddSingleton(sp =>
        {
            var started = policyNames(sp.GetRequiredService<IOptions<TOptions>>().ValueOrNew()).ToArray();
            AppliedKeys live = (keys, applied) => PolicyKeys.Live(started, keys, applied, readAtStart);
            return ActivatorUtilities.CreateInstance<ReloadableOptions<TOptions>>(sp, section, live);
        });
        return services;
    }
}
