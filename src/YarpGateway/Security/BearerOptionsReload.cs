using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using YarpGateway.Configuration;

namespace YarpGateway.Security;

/// <summary>
/// Applies an edit of <c>Authentication:Schemes:Bearer</c> without a restart (a signing key rotated, an audience added):
/// the edited section is checked as at start-up (<see cref="BearerAuthentication.Validate"/>, then built, which finds a
/// value ASP.NET Core cannot parse), and only then is the scheme's cached <see cref="JwtBearerOptions"/> dropped, so that
/// the next request builds it from the section (with a new <see cref="ValidatedTokenCache"/>: a token accepted under a
/// removed key is not accepted again). A bad edit is logged once and counted as rejected, and the options in force stay:
/// ASP.NET Core would otherwise have built them from the bad section on the next request. Adding or removing the whole
/// section is a restart (<see cref="StartupOnlySections"/> says so): the scheme and the authorization middleware are
/// registered at start-up or not at all.
/// </summary>
internal sealed partial class BearerOptionsReload : IOptionsChangeTokenSource<JwtBearerOptions>, IDisposable
{
    private readonly IConfiguration _configuration;
    private readonly IOptionsFactory<JwtBearerOptions> _factory;
    private readonly ConfigMetrics _metrics;
    private readonly ILogger<BearerOptionsReload> _logger;
    private readonly IDisposable _subscription;
    private readonly Lock _gate = new();
    private readonly CheckedEdits _edits;
    private readonly CheckedChangeToken _changed = new();

    public BearerOptionsReload(IConfiguration configuration, IOptionsFactory<JwtBearerOptions> factory, ConfigMetrics metrics, ILogger<BearerOptionsReload> logger)
    {
        _configuration = configuration;
        _factory = factory;
        _metrics = metrics;
        _logger = logger;
        _edits = new CheckedEdits(configuration, BearerAuthentication.SectionName, ShowsValue);
        _subscription = ChangeToken.OnChange(configuration.GetReloadToken, Reload);
    }

    public string Name => BearerAuthentication.Scheme;

    public IChangeToken GetChangeToken() => _changed.Get();

    /// <summary>What of the <c>Authentication</c> section only a restart applies: all of it but the bearer scheme's settings, and whether that scheme is there.</summary>
    internal const string ReadAtStartPart = SectionName + " (but for the settings of Schemes:Bearer)";

    /// <summary>The configuration section of ASP.NET Core's authentication schemes.</summary>
    internal const string SectionName = "Authentication";

    /// <summary>The keys of <see cref="ReadAtStartPart"/>, for <see cref="StartupOnlySections"/>.</summary>
    internal static Dictionary<string, string> ReadAtStart(IConfiguration configuration)
    {
        const string Bearer = "Schemes:" + BearerAuthentication.Scheme;
        var keys = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in ConfigChanges.Capture(configuration, SectionName))
        {
            if (key.Equals(Bearer, StringComparison.OrdinalIgnoreCase) || key.StartsWith(Bearer + ":", StringComparison.OrdinalIgnoreCase))
            {
                keys[Bearer] = "set";
            }
            else
            {
                keys[key] = value;
            }
        }

        return keys;
    }

    /// <summary>
    /// Builds the scheme's options from the section as it is now, the way the handler will: null and the error when a
    /// value does not parse (<c>"ValidateAudience": "maybe"</c> and the like throw in ASP.NET Core's own binding).
    /// </summary>
    internal static string? BuildError(IOptionsFactory<JwtBearerOptions> factory)
    {
        try
        {
            _ = factory.Create(BearerAuthentication.Scheme);
            return null;
        }
        catch (Exception ex) when (ex is FormatException or OverflowException or ArgumentException or InvalidOperationException or OptionsValidationException)
        {
            return ex.Message;
        }
    }

    private void Reload()
    {
        CancellationTokenSource fired;
        string changes;
        lock (_gate)
        {
            var outcome = _edits.Check(
                () =>
                {
                    var errors = BearerAuthentication.Validate(_configuration).ToList();
                    if (errors.Count == 0 && BuildError(_factory) is { } unparsed)
                    {
                        errors.Add(new ConfigError(BearerAuthentication.SectionName, unparsed));
                    }

                    return errors;
                },
                waits: () => !BearerAuthentication.IsConfigured(_configuration)); // removed: a restart (StartupOnlySections says so); until then, what was in force
            if (outcome is { Rejection: null, Changes: null })
            {
                return;
            }

            if (outcome.Rejection is { } rejection)
            {
                Log.Rejected(_logger, BearerAuthentication.SectionName, rejection); // with the file that set each
                _metrics.Reloaded(applied: false); // after the line: whoever sees the count finds it
                return;
            }

            changes = outcome.Changes!;
            fired = _changed.Renew();
        }

        // The options monitor drops the scheme's options and builds them again, from the section just checked. A failure
        // only if the section was saved again, unparsable, between the check and this build: the next reload checks it.
        // Then the line and the count: whoever reads either and sends a token at once meets the new settings (before, the
        // line came first, and such a token could still be refused under the old key for a moment).
        var failure = CheckedChangeToken.Fire(fired);
        Log.Applied(_logger, BearerAuthentication.SectionName, changes);
        _metrics.Reloaded(applied: true);
        if (failure is not null)
        {
            Log.BuildFailed(_logger, BearerAuthentication.SectionName, failure);
        }
    }

    /// <summary>Issuers, audiences, the authority and switches are shown; nothing of a signing key is.</summary>
    private static bool ShowsValue(string key)
        => !key.StartsWith("SigningKeys", StringComparison.OrdinalIgnoreCase) && ConfigChanges.ValuesExceptSecrets(key);

    public void Dispose()
    {
        _subscription.Dispose();
        _changed.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "{Section} reloaded: tokens are validated with the new settings from the next request. Changed: {Changes}.", EventName = "BearerReloaded")]
        public static partial void Applied(ILogger logger, string section, string changes);

        [LoggerMessage(2, LogLevel.Error, "{Section} reload rejected; tokens are still validated with the previous settings. {Errors}", EventName = "BearerReloadRejected")]
        public static partial void Rejected(ILogger logger, string section, string errors);

        [LoggerMessage(3, LogLevel.Error, "{Section} was edited again while it was applied, and could not be built: {Error}", EventName = "BearerReloadFailed")]
        public static partial void BuildFailed(ILogger logger, string section, string error);
    }
}
