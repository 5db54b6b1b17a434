using Microsoft.Extensions.Options;

namespace YarpGateway.Configuration;

/// <summary>
/// A <c>Gateway:*</c> section and the options type it binds to, with what start-up does for every section, written once
/// for each type here rather than built at run time from the type (<c>MakeGenericMethod</c>, which a native AOT build
/// cannot promise): the checks (<see cref="StartupChecks"/>) and the validator of its times (<see cref="TimeSpanRangeValidator{TOptions}"/>).
/// </summary>
internal sealed class GatewaySection
{
    private readonly Action<IServiceProvider, IConfiguration, List<ConfigError>> _check;
    private readonly Action<IServiceCollection> _addTimeSpanRangeValidator;

    private GatewaySection(string path, Type type, Action<IServiceProvider, IConfiguration, List<ConfigError>> check, Action<IServiceCollection> addTimeSpanRangeValidator)
    {
        Path = path;
        Type = type;
        _check = check;
        _addTimeSpanRangeValidator = addTimeSpanRangeValidator;
    }

    /// <summary>The section's path, its type's <c>SectionName</c> (a test checks that they agree).</summary>
    public string Path { get; }

    public Type Type { get; }

    public static GatewaySection Of<TOptions>(string path)
        where TOptions : class, new()
        => new(
            path,
            typeof(TOptions),
            (services, configuration, errors) => StartupChecks.CheckOptions<TOptions>(services, configuration, path, errors),
            services => services.AddSingleton<IValidateOptions<TOptions>>(new TimeSpanRangeValidator<TOptions>(path)));

    /// <summary>Adds the section's errors as start-up lists them.</summary>
    public void Check(IServiceProvider services, IConfiguration configuration, List<ConfigError> errors) => _check(services, configuration, errors);

    /// <summary>No time in the section longer than a timer takes (a longer one stopped the gateway with an unhandled exception).</summary>
    public void AddTimeSpanRangeValidator(IServiceCollection services) => _addTimeSpanRangeValidator(services);
}
