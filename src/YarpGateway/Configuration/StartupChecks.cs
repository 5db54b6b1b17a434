using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using YarpGateway.Endpoints;
using YarpGateway.Security;

namespace YarpGateway.Configuration;

/// <summary>
/// What start-up checks on top of the proxy configuration (which <see cref="GatewayConfigProvider"/> checks), read from
/// the configuration as it is now: Kestrel's endpoints and limits, every <c>Gateway:*</c> section, the Logging section, AllowedHosts, the bearer scheme.
/// Run before the gateway serves, and again when a reload changes what only a restart applies, so that the operator
/// learns then that a restart would fail, not when it does.
/// </summary>
internal sealed class StartupChecks(IServiceProvider services, IConfiguration configuration, UnknownSettings.Schema schema)
{
    /// <summary>Every error, in the order start-up lists them.</summary>
    public List<ConfigError> Find()
    {
        var errors = new List<ConfigError>(GatewayKestrelSetup.Validate(configuration));
        errors.AddRange(CertificateFileErrors.Find(configuration));
        foreach (var section in schema.Sections)
        {
            // Every Gateway:* section, from the one list of them: a section left out here started with its defaults,
            // its errors unsaid (Gateway:Memory was).
            section.Check(services, configuration, errors);
        }

        errors.AddRange(Telemetry.LoggingSettings.Find(configuration));
        errors.AddRange(RequestFiltering.AllowedHosts.Find(configuration));
        var bearerErrors = BearerAuthentication.Validate(configuration);
        errors.AddRange(bearerErrors);
        if (bearerErrors.Count == 0 && BearerAuthentication.IsConfigured(configuration)
            && BearerOptionsReload.BuildError(services.GetRequiredService<IOptionsFactory<JwtBearerOptions>>()) is { } unparsed)
        {
            errors.Add(new ConfigError(BearerAuthentication.SectionName, unparsed)); // a value ASP.NET Core cannot parse: every request would have thrown it
        }

        return errors;
    }

    internal static void CheckOptions<TOptions>(IServiceProvider services, IConfiguration configuration, string section, List<ConfigError> errors)
        where TOptions : class, new()
    {
        // First every value that does not convert, with the section's other errors: the binder stops at the first one,
        // and drops an entry of a map or a list that holds one without a word (a rate-limit policy with "PermitLimit":
        // "x" was gone, and a route naming it read "'p' is not a policy ... (none are defined)"; named by no route, it
        // passed). A reload refuses the same values (ReloadableOptions).
        var found = OptionsBindingErrors.Find(configuration.GetSection(section), services.GetServices<IValidateOptions<TOptions>>());
        if (found.Count > 0)
        {
            errors.AddRange(found);
            return;
        }

        try
        {
            // The factory, not IOptions<T>: that keeps the value it first built, and a reload's check needs the file's.
            _ = services.GetRequiredService<IOptionsFactory<TOptions>>().Create(Options.DefaultName);
        }
        catch (OptionsValidationException ex)
        {
            errors.AddRange(ex.Failures.Select(failure => ConfigError.FromFailure(section, failure)));
        }
        catch (InvalidOperationException ex)
        {
            errors.Add(new ConfigError(section, ex.Message)); // something the walk above does not model
        }
    }
}
